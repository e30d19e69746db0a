package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// markerFile marks a directory as a state directory of this package; only such a
// directory (or an empty one) is ever wiped.
const markerFile = ".localcluster"

// pidFile lists the processes of a running cluster, so that the next Start in the
// same state directory can end those a killed parent left behind.
const pidFile = "pids"

// stateDirs are the parts of a state directory.
type stateDirs struct {
	root      string
	etcd      string // etcd's data directory
	apiServer string // kube-apiserver's certificates, envtest's CertDir
	users     string // one kubeconfig per user
	logs      string // one log file per binary
}

func newStateDirs(root string) stateDirs {
	return stateDirs{
		root:      root,
		etcd:      filepath.Join(root, EtcdBinary),
		apiServer: filepath.Join(root, APIServerBinary),
		users:     filepath.Join(root, "users"),
		logs:      filepath.Join(root, "logs"),
	}
}

// servingCA is the CA that signed kube-apiserver's serving certificate.
func (d stateDirs) servingCA() string {
	return filepath.Join(d.apiServer, "serving-ca.crt")
}

// saSigningKey is the key kube-apiserver signs service-account tokens with. envtest
// generates it in its CertDir under this name (which it does not export).
func (d stateDirs) saSigningKey() string {
	return filepath.Join(d.apiServer, "sa-signer.key")
}

// clientCA is the CA that signs the client certificates of envtest's users; envtest
// writes it into its CertDir under this name (which it does not export).
func (d stateDirs) clientCA() string {
	return filepath.Join(d.apiServer, "client-cert-auth-ca.crt")
}

// adminKubeconfig is the kubeconfig of the cluster admin.
func (d stateDirs) adminKubeconfig() string {
	return filepath.Join(d.root, "kubeconfig")
}

// prepareStateDir ends what a previous cluster in root left running, wipes root and
// creates its parts. Reusing etcd data with freshly generated certificates would give
// a cluster whose service-account tokens and stored secrets no longer verify, and
// envtest silently keeps an old serving certificate it finds, so every start is
// from scratch.
func prepareStateDir(root string) (stateDirs, error) {
	dirs := newStateDirs(root)
	if err := checkWipeable(root); err != nil {
		return dirs, err
	}
	if err := endLeftovers(dirs); err != nil {
		return dirs, err
	}
	if err := os.RemoveAll(root); err != nil {
		return dirs, fmt.Errorf("localcluster: wiping %s: %w", root, err)
	}
	for _, dir := range []string{dirs.etcd, dirs.apiServer, dirs.users, dirs.logs} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return dirs, err
		}
	}
	return dirs, os.WriteFile(filepath.Join(root, markerFile), nil, 0o600)
}

// checkWipeable refuses directories that have content but no marker: a mistyped
// state directory must not cost anyone their files.
func checkWipeable(root string) error {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("localcluster: state directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, markerFile)); err != nil {
		return fmt.Errorf("localcluster: refusing to wipe %s: it is not empty and was not created by localcluster", root)
	}
	return nil
}

// recordPIDs writes the ids of the processes running so far into the pid file. etcd
// and kube-apiserver are started by envtest, which does not expose their process ids,
// so they are found as this process's children that use the state directory.
func (c *Cluster) recordPIDs(context.Context) error {
	pids := childrenUsing(c.dirs.root)
	var b strings.Builder
	for _, pid := range pids {
		fmt.Fprintln(&b, pid)
	}
	return os.WriteFile(filepath.Join(c.dirs.root, pidFile), []byte(b.String()), 0o600)
}

func removePIDFile(dirs stateDirs) error {
	err := os.Remove(filepath.Join(dirs.root, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// endLeftovers kills the processes listed in the pid file that still use the state
// directory (a recycled pid belongs to someone else and is left alone), and waits
// until they are gone so that they release their ports and files.
func endLeftovers(dirs stateDirs) error {
	data, err := os.ReadFile(filepath.Join(dirs.root, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var killed []int
	for _, field := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(field)
		if err != nil || !usesDir(pid, dirs.root) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("localcluster: killing leftover process %d: %w", pid, err)
		}
		killed = append(killed, pid)
	}
	gone := func(context.Context) (bool, error) {
		for _, pid := range killed {
			if usesDir(pid, dirs.root) {
				return false, nil
			}
		}
		return true, nil
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, gone); err != nil {
		return fmt.Errorf("localcluster: processes %v of a previous cluster in %s do not go away: %w", killed, dirs.root, err)
	}
	return nil
}

// childrenUsing lists this process's children whose command line mentions dir.
// It reads /proc, so it finds nothing where there is none.
func childrenUsing(dir string) []int {
	var pids []int
	for _, pid := range ProcessesUsing(dir) {
		if parentOf(pid) == os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ProcessesUsing lists the running processes whose command line mentions dir, such as
// the processes of a cluster whose state directory is dir, or programs a test started
// with files in it. This process and its ancestors (go test, make, a shell), whose
// command lines may name dir too, are left out. Tests call it after Stop to check that
// nothing is left running. It reads /proc (Linux); elsewhere it finds nothing.
func ProcessesUsing(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	mine := ancestors()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && !mine[pid] && usesDir(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ancestors returns this process and its ancestors.
func ancestors() map[int]bool {
	pids := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !pids[pid]; pid = parentOf(pid) {
		pids[pid] = true
	}
	return pids
}

// usesDir reports whether process pid is alive and mentions dir in its arguments.
// A zombie has an empty command line and counts as gone.
func usesDir(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// parentOf returns the parent pid from /proc/PID/stat, or -1. The command name in
// that file may contain spaces and parentheses, so fields are counted after the
// last ')'.
func parentOf(pid int) int {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return -1
	}
	return ppid
}

// logTails returns the last lines of the named binaries' logs, to put the reason for a
// failed start into the error itself.
func logTails(logDir string, binaries ...string) string {
	const maxLines = 15
	var b strings.Builder
	for _, name := range binaries {
		path := filepath.Join(logDir, name+".log")
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > maxLines {
			lines = lines[len(lines)-maxLines:]
		}
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", path, strings.Join(lines, "\n"))
	}
	return b.String()
}
