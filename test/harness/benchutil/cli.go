package benchutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// Flags are the flags every measuring program has: where the control plane's
// binaries, state and CRDs are, its namespace, and where to write the JSON results.
type Flags struct {
	// Root is the repository, found upwards from the working directory.
	Root      string
	StateDir  string
	BinDir    string
	CRDDir    string
	Namespace string
	JSONPath  string
}

// RegisterFlags registers -state-dir (default bin/STATE), -bin-dir (default
// $KUBEBUILDER_ASSETS, else bin/), -crd-dir, -namespace (default namespace) and
// -json on fs.
func RegisterFlags(fs *flag.FlagSet, state, namespace string) (*Flags, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	binDir := os.Getenv("KUBEBUILDER_ASSETS")
	if binDir == "" {
		binDir = filepath.Join(root, "bin")
	}
	f := &Flags{Root: root}
	fs.StringVar(&f.StateDir, "state-dir", filepath.Join(root, "bin", state), "state directory of the local control plane (wiped at start)")
	fs.StringVar(&f.BinDir, "bin-dir", binDir, "directory with etcd, kube-apiserver and kube-controller-manager")
	fs.StringVar(&f.CRDDir, "crd-dir", filepath.Join(root, "config", "crd", "bases"), "directory of the CRDs to install")
	fs.StringVar(&f.Namespace, "namespace", namespace, "namespace of the measured objects")
	fs.StringVar(&f.JSONPath, "json", "", `also write the results as JSON to this file ("-": standard output, after the report)`)
	return f, nil
}

// EnvOptions are the options of StartEnv the flags give.
func (f *Flags) EnvOptions() EnvOptions {
	return EnvOptions{StateDir: f.StateDir, BinDir: f.BinDir, CRDDir: f.CRDDir, Namespace: f.Namespace}
}

// Run says what ran, where and when; results embed it.
type Run struct {
	// Args are the program's command-line arguments.
	Args []string `json:"args"`
	// Revision is the repository's commit, marked when the tree had changes.
	Revision string    `json:"revision,omitempty"`
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
	// Elapsed is how long the whole run took.
	Elapsed time.Duration `json:"elapsedNanoseconds,omitempty"`
	// Error is why the run failed, or "".
	Error string `json:"error,omitempty"`
}

// NewRun describes a run of this program in the repository at root, starting now.
func NewRun(root string) Run {
	return Run{Args: os.Args[1:], Revision: Revision(root), Machine: ThisMachine(), Started: time.Now()}
}

// Finish records the load average, the elapsed time and err (when not nil).
func (r *Run) Finish(err error) {
	r.Machine.LoadAfter = LoadAvg()
	r.Elapsed = time.Since(r.Started)
	if err != nil {
		r.Error = err.Error()
	}
}

// PrintHeader writes the revision, the machine, the load and the elapsed time.
func (r *Run) PrintHeader(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "revision %s; %d CPUs (%s), %s/%s, %s; load average %s before, %s after; %.0f s in all\n",
		r.Revision, m.CPUs, m.CPUModel, m.OS, m.Arch, m.GoVersion, m.LoadBefore, m.LoadAfter, r.Elapsed.Seconds())
}

// Main runs a measuring program: run gets a context that ends on SIGINT, SIGTERM
// or SIGHUP; an error is printed with the program's name and exits with code 1.
// -help (flag.ErrHelp) exits with 0.
func Main(program string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(1)
	}
}

// started is when the program started, for the progress lines.
var started = time.Now()

// Step prints a progress line to standard error, with the time since the program
// started.
func Step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%7.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// Started is when the program started: the origin of Step's times.
func Started() time.Time { return started }
