// Command localcluster is what `make run` runs: it starts a local control plane (etcd,
// kube-apiserver and kube-controller-manager from bin/), installs this project's CRDs,
// prints how to reach the cluster, and runs the operator in the foreground against it.
// Ctrl-C stops the operator first, then the control plane.
//
// Usage:
//
//	go run ./hack/localcluster [flags] [-- MANAGER [ARGS...]]
//
// Without MANAGER (or with --no-manager) it runs only the control plane until
// interrupted. With USE_EXISTING_CLUSTER=true it starts nothing: it installs the CRDs
// into the cluster of $KUBECONFIG and runs MANAGER against that.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
)

// managerStopTimeout is how long the manager gets between SIGTERM and SIGKILL: a bit
// more than controller-runtime's default graceful shutdown of 30s, so a manager that
// honours its own timeout is never killed.
const managerStopTimeout = 35 * time.Second

// config is what the command line says.
type config struct {
	stateDir  string
	binDir    string
	crdDir    string
	noManager bool
	manager   []string // the manager binary and its arguments; empty without one
}

func main() {
	os.Exit(run())
}

// run returns the exit code: the manager's when it exits by itself, 0 after an
// interrupt, 1 on errors of this program.
func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package has printed the error and the usage
	}
	// envtest's CRD installer logs through controller-runtime; without a logger it would
	// complain about that instead.
	ctrllog.SetLogger(zap.New())

	// SIGHUP too: closing the terminal must not leave the control plane running.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)

	if os.Getenv("USE_EXISTING_CLUSTER") == "true" {
		return runOnExistingCluster(cfg, signals)
	}
	return runOnLocalCluster(cfg, signals)
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("localcluster", flag.ContinueOnError)
	fs.Usage = func() {
		_, _ = fmt.Fprint(fs.Output(), `usage: go run ./hack/localcluster [flags] [-- MANAGER [ARGS...]]

Starts etcd, kube-apiserver and kube-controller-manager, installs the CRDs and runs
MANAGER with KUBECONFIG set; without MANAGER, runs the control plane until Ctrl-C.
With USE_EXISTING_CLUSTER=true it starts nothing and uses the cluster of $KUBECONFIG.

`)
		fs.PrintDefaults()
	}
	defaultBin := os.Getenv("KUBEBUILDER_ASSETS")
	if defaultBin == "" {
		defaultBin = "bin"
	}
	fs.StringVar(&cfg.stateDir, "state-dir", filepath.Join("bin", "localcluster"), "state directory (wiped at start)")
	fs.StringVar(&cfg.binDir, "bin-dir", defaultBin, "directory with etcd, kube-apiserver and kube-controller-manager")
	fs.StringVar(&cfg.crdDir, "crd-dir", filepath.Join("config", "crd", "bases"), "directory of the CRDs to install")
	fs.BoolVar(&cfg.noManager, "no-manager", false, "run only the control plane, even if a manager is given")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if !cfg.noManager {
		cfg.manager = fs.Args()
	}
	return cfg, nil
}

// runOnLocalCluster starts the control plane, then the manager (if any), and stops
// both in that order.
func runOnLocalCluster(cfg config, signals <-chan os.Signal) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A Ctrl-C during start-up aborts it; afterwards the shutdown order is ours to
	// keep: manager first, control plane last.
	stopAbortOnSignal := abortOnSignal(signals, cancel)
	started := time.Now()
	fmt.Printf("Starting etcd, kube-apiserver and kube-controller-manager from %s ...\n", cfg.binDir)
	cluster, err := localcluster.Start(ctx, localcluster.Options{BinDir: cfg.binDir, StateDir: cfg.stateDir})
	if stopAbortOnSignal() {
		if err == nil {
			stopCluster(cluster)
		}
		return 0 // stopped as asked
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopCluster(cluster)
	startup := time.Since(started)
	if err := installCRDs(cluster.Config(), cfg.crdDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	printHowToUse(cluster, cfg.binDir, startup)

	if len(cfg.manager) == 0 {
		fmt.Println("No manager to run (pass one after --). Press Ctrl-C to stop the control plane.")
		<-signals
		return 0
	}
	fmt.Println("Ctrl-C stops the manager, then the control plane.")
	return runManager(cfg.manager, cluster.KubeconfigPath(), signals)
}

// abortOnSignal calls cancel on the first signal until the returned function is
// called; that function reports whether a signal came.
func abortOnSignal(signals <-chan os.Signal, cancel func()) (stop func() bool) {
	done := make(chan struct{})
	result := make(chan bool, 1)
	go func() {
		select {
		case sig := <-signals:
			fmt.Fprintf(os.Stderr, "\n%s: stopping once the current start-up step is done ...\n", sig)
			cancel()
			<-done
			result <- true
		case <-done:
			result <- false
		}
	}()
	return func() bool {
		close(done)
		return <-result
	}
}

func stopCluster(cluster *localcluster.Cluster) {
	fmt.Println("Stopping the control plane ...")
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Printf("Control plane stopped; its state and logs stay in %s until the next start.\n", cluster.StateDir())
}

// runOnExistingCluster installs the CRDs into the cluster of $KUBECONFIG and runs the
// manager against it.
func runOnExistingCluster(cfg config, signals <-chan os.Signal) int {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "localcluster: USE_EXISTING_CLUSTER=true needs KUBECONFIG to name the cluster's kubeconfig file")
		return 1
	}
	restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: reading KUBECONFIG=%s: %v\n", kubeconfig, err)
		return 1
	}
	fmt.Printf("USE_EXISTING_CLUSTER=true: using %s from KUBECONFIG=%s\n", restConfig.Host, kubeconfig)
	if err := installCRDs(restConfig, cfg.crdDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if len(cfg.manager) == 0 {
		return 0
	}
	fmt.Println("Ctrl-C stops the manager.")
	return runManager(cfg.manager, kubeconfig, signals)
}

func installCRDs(cfg *rest.Config, dir string) error {
	names, err := localcluster.InstallCRDs(cfg, dir)
	if err != nil {
		return fmt.Errorf("%w (run `make manifests` to generate them)", err)
	}
	if len(names) == 0 {
		fmt.Printf("warning: no CRDs found in %s; run `make manifests`\n", dir)
	}
	for _, name := range names {
		fmt.Println("Installed CRD", name)
	}
	return nil
}

func printHowToUse(cluster *localcluster.Cluster, binDir string, startup time.Duration) {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		bin = binDir
	}
	fmt.Printf(`
Local control plane is up after %.1fs: kube-apiserver at %s
State and logs: %s

To use it from another shell:
  export KUBECONFIG=%s
  export PATH=%s:$PATH   # kubectl and helm built by make tools
  kubectl apply -f config/samples/

`, startup.Seconds(), cluster.APIServerURL(), cluster.StateDir(), cluster.KubeconfigPath(), bin)
}

// runManager runs the manager in the foreground with KUBECONFIG set and returns its
// exit code, or 0 when a signal stopped it.
func runManager(argv []string, kubeconfig string, signals <-chan os.Signal) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	// No stdin: the manager runs in its own process group, and reading the terminal
	// from there would stop it (SIGTTIN).
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	manager, err := localcluster.StartProcess(cmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		return 1
	}
	fmt.Printf("Running %s (pid %d) with KUBECONFIG=%s\n", argv[0], manager.Pid(), kubeconfig)

	select {
	case <-manager.Done():
		code := manager.ExitCode()
		fmt.Fprintf(os.Stderr, "%s exited with code %d\n", argv[0], code)
		return code
	case sig := <-signals:
		fmt.Fprintf(os.Stderr, "\n%s: stopping %s (again to kill it) ...\n", sig, argv[0])
		stopManager(manager, signals)
		return 0
	}
}

// stopManager sends SIGTERM and waits managerStopTimeout, or less if another signal
// comes, before it kills the manager.
func stopManager(manager *localcluster.Process, signals <-chan os.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), managerStopTimeout)
	defer cancel()
	go func() {
		select {
		case <-signals:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := manager.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
	}
}
