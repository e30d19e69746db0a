// Package localcluster runs a small but real Kubernetes control plane on this machine:
// etcd, kube-apiserver and kube-controller-manager, started from binaries that
// `make tools` builds from Go modules into bin/. It serves `make run`, the end-to-end
// tests and the benchmarks.
//
// etcd and kube-apiserver are started through controller-runtime's envtest
// control-plane API, which already knows their flags, certificates and client users;
// kube-controller-manager is started beside them so that garbage collection (owner
// references), namespace deletion, service-account tokens, Deployments and the other
// built-in controllers behave as in a real cluster. There is no kubelet and no
// scheduler: Pods are created but never run.
//
// Everything listens on loopback only, on free ports chosen at start-up, and all state
// (etcd data, certificates, kubeconfigs, logs) lives in one state directory, which Start
// wipes so that every start is a fresh cluster.
//
// The package is Unix-only: the processes run in their own process groups and are
// stopped with signals.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Binary names looked up in Options.BinDir.
const (
	EtcdBinary              = "etcd"
	APIServerBinary         = "kube-apiserver"
	ControllerManagerBinary = "kube-controller-manager"
)

// Default timeouts. Start-up is generous because a cold kube-apiserver on a two-core
// machine takes several seconds just to install its built-in APIs and RBAC roles.
const (
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 20 * time.Second
)

// AdminGroup is the group that bypasses authorization in kube-apiserver.
const AdminGroup = "system:masters"

// Client rate limits of the configs this package hands out. client-go's default of
// 5 QPS would make tests and benchmarks against a local cluster measure the client's
// limiter rather than the cluster.
const (
	clientQPS   = 1000
	clientBurst = 2000
)

// Options says where the binaries are and where the cluster keeps its state.
type Options struct {
	// BinDir holds the etcd, kube-apiserver and kube-controller-manager binaries
	// (bin/ of the repository after `make tools`). Required.
	BinDir string
	// StateDir receives etcd's data, certificates, kubeconfigs and logs. Required.
	// It must be empty, missing, or a directory this package created before: Start
	// wipes it, and refuses to wipe anything it did not create.
	StateDir string
	// StartTimeout bounds how long each process may take to become healthy.
	// Zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout bounds how long each process may take to exit after SIGTERM before
	// it is killed. Zero means DefaultStopTimeout.
	StopTimeout time.Duration
}

// Cluster is a running local control plane. Stop it with Stop; it also stops when the
// context given to Start is done.
type Cluster struct {
	opts  Options
	dirs  stateDirs
	plane *envtest.ControlPlane
	kcm   *Process
	logs  []*os.File
	admin *User

	// userMu serializes AddUser: envtest's certificate authority is not safe for
	// concurrent use, and parallel tests may add users at once.
	userMu sync.Mutex

	// faultMu serializes the fault methods (restart.go) with each other and with
	// Stop; stopped and etcdDown are guarded by it.
	faultMu  sync.Mutex
	stopped  bool
	etcdDown bool

	stopOnce sync.Once
	stopErr  error
	// stopMu guards stopOnCtxDone, which the context's AfterFunc may race to read.
	stopMu        sync.Mutex
	stopOnCtxDone func() bool
}

// User is a client identity provisioned with AddUser, authenticated by a client
// certificate signed by the API server's client CA.
type User struct {
	// Name is the user name the API server sees.
	Name string
	// Groups are the groups the API server sees.
	Groups []string
	// KubeconfigPath is a kubeconfig file for this user (context "envtest").
	KubeconfigPath string

	config *rest.Config
}

// Config returns a fresh copy of the REST config of this user, safe to modify.
func (u *User) Config() *rest.Config {
	return rest.CopyConfig(u.config)
}

// Start wipes opts.StateDir and starts etcd, kube-apiserver and
// kube-controller-manager, returning when all three are healthy. When ctx is done the
// cluster stops; during start-up that is noticed between steps (the envtest part
// cannot be interrupted), so an aborted Start may take a few seconds to return. On
// error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Cluster, retErr error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	dirs, err := prepareStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, dirs: dirs}
	defer func() {
		if retErr != nil {
			_ = c.Stop()
		}
	}()

	// A cancelled ctx is noticed between steps (each bounded by StartTimeout), never
	// concurrently with one, so that Stop never races a step. The pid file is
	// rewritten after each step that starts processes, so that a parent killed in
	// the middle of start-up leaves nothing the next Start cannot find.
	steps := []func(context.Context) error{
		c.startAPIServer,
		c.recordPIDs,
		c.provisionAdmin,
		c.startControllerManager,
		c.recordPIDs,
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("localcluster: start-up aborted: %w", err)
		}
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	c.stopMu.Lock()
	c.stopOnCtxDone = context.AfterFunc(ctx, func() { _ = c.Stop() })
	c.stopMu.Unlock()
	return c, nil
}

// complete checks the options, makes the paths absolute and fills in defaults.
func (o Options) complete() (Options, error) {
	if o.BinDir == "" || o.StateDir == "" {
		return o, errors.New("localcluster: Options.BinDir and Options.StateDir are required")
	}
	var err error
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return o, err
	}
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return o, err
	}
	for _, name := range []string{EtcdBinary, APIServerBinary, ControllerManagerBinary} {
		if _, err := os.Stat(filepath.Join(o.BinDir, name)); err != nil {
			return o, fmt.Errorf("localcluster: %s not found in %s; run `make tools` first", name, o.BinDir)
		}
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	return o, nil
}

// startAPIServer starts etcd and kube-apiserver through envtest, with their data,
// certificates and logs in the state directory instead of temporary directories, so
// that they can be inspected and so that a later Start can find leftovers.
func (c *Cluster) startAPIServer(context.Context) error {
	etcdLog, err := c.openLog(EtcdBinary)
	if err != nil {
		return err
	}
	apiLog, err := c.openLog(APIServerBinary)
	if err != nil {
		return err
	}
	c.plane = &envtest.ControlPlane{
		Etcd: &envtest.Etcd{
			Path:         filepath.Join(c.opts.BinDir, EtcdBinary),
			DataDir:      c.dirs.etcd,
			StartTimeout: c.opts.StartTimeout,
			StopTimeout:  c.opts.StopTimeout,
			Out:          etcdLog,
			Err:          etcdLog,
		},
		APIServer: &envtest.APIServer{
			Path:         filepath.Join(c.opts.BinDir, APIServerBinary),
			CertDir:      c.dirs.apiServer,
			StartTimeout: c.opts.StartTimeout,
			StopTimeout:  c.opts.StopTimeout,
			Out:          apiLog,
			Err:          apiLog,
		},
	}
	if err := c.plane.Start(); err != nil {
		return fmt.Errorf("localcluster: starting etcd and kube-apiserver: %w%s", err,
			logTails(c.dirs.logs, EtcdBinary, APIServerBinary))
	}
	return c.checkLoopback()
}

// checkLoopback makes sure that envtest picked loopback addresses: the cluster has no
// authentication worth the name and must not be reachable from the network.
func (c *Cluster) checkLoopback() error {
	serving := c.plane.APIServer.SecureServing
	addrs := map[string]string{
		"etcd":           c.plane.Etcd.URL.Hostname(),
		"kube-apiserver": serving.Address,
	}
	for name, host := range addrs {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("localcluster: %s listens on %q, not on loopback", name, host)
		}
	}
	return nil
}

// provisionAdmin creates the cluster-admin user whose kubeconfig Start writes to
// KubeconfigPath, and writes the API server's serving CA where
// kube-controller-manager can put it into service-account credentials.
func (c *Cluster) provisionAdmin(context.Context) error {
	admin, err := c.addUser("localcluster-admin", []string{AdminGroup}, c.dirs.adminKubeconfig())
	if err != nil {
		return err
	}
	c.admin = admin
	serving := c.plane.APIServer.SecureServing
	return os.WriteFile(c.dirs.servingCA(), serving.CA, 0o600)
}

// userFileName keeps user names such as system:serviceaccount:ns:name usable as file
// names.
var userFileName = regexp.MustCompile(`[^A-Za-z0-9._:-]`)

// AddUser provisions a user with the given groups (for example AdminGroup), writes a
// kubeconfig for it into the state directory and returns it. What the user may do is
// up to RBAC, as in any cluster.
func (c *Cluster) AddUser(name string, groups []string) (*User, error) {
	path := filepath.Join(c.dirs.users, userFileName.ReplaceAllString(name, "_")+".kubeconfig")
	return c.addUser(name, groups, path)
}

// addUser provisions a user and writes its kubeconfig to path.
func (c *Cluster) addUser(name string, groups []string, path string) (*User, error) {
	c.userMu.Lock()
	defer c.userMu.Unlock()
	authn, err := c.plane.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{
		QPS:   clientQPS,
		Burst: clientBurst,
	})
	if err != nil {
		return nil, fmt.Errorf("localcluster: adding user %q: %w", name, err)
	}
	kubeconfig, err := authn.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("localcluster: kubeconfig of user %q: %w", name, err)
	}
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	return &User{Name: name, Groups: groups, KubeconfigPath: path, config: authn.Config()}, nil
}

// KubeconfigPath is the admin kubeconfig file, STATE_DIR/kubeconfig (user
// localcluster-admin in group system:masters, context "envtest").
func (c *Cluster) KubeconfigPath() string {
	return c.admin.KubeconfigPath
}

// Config returns a fresh copy of the admin REST config, safe to modify.
func (c *Cluster) Config() *rest.Config {
	return c.admin.Config()
}

// APIServerURL is the https URL of kube-apiserver.
func (c *Cluster) APIServerURL() *url.URL {
	return c.plane.APIServer.SecureServing.URL("https", "/")
}

// StateDir is the absolute path of the state directory.
func (c *Cluster) StateDir() string {
	return c.dirs.root
}

// LogDir is where each process writes its log, one file per binary.
func (c *Cluster) LogDir() string {
	return c.dirs.logs
}

// Stop stops kube-controller-manager, kube-apiserver and etcd, in that order, and
// waits until they are gone. It is safe to call more than once and from several
// goroutines; every call returns the result of the first. The state directory stays
// for inspection until the next Start.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopMu.Lock()
		if c.stopOnCtxDone != nil {
			c.stopOnCtxDone() // release the context's reference to c
		}
		c.stopMu.Unlock()
		c.stopErr = c.stop()
	})
	return c.stopErr
}

func (c *Cluster) stop() error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.stopped = true
	var errs []error
	if c.kcm != nil {
		select {
		case <-c.kcm.Done():
			// Worth an error: tests that rely on its controllers fail in confusing ways.
			errs = append(errs, fmt.Errorf("kube-controller-manager had exited before Stop (%w); see %s",
				c.kcm.Err(), filepath.Join(c.dirs.logs, ControllerManagerBinary+".log")))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.StopTimeout)
		errs = append(errs, c.kcm.Stop(ctx))
		cancel()
	}
	if c.plane != nil {
		// ControlPlane.Stop stops kube-apiserver before etcd, so that the API server
		// does not spend its shutdown retrying a vanished etcd.
		errs = append(errs, c.plane.Stop())
	}
	for _, f := range c.logs {
		errs = append(errs, f.Close())
	}
	errs = append(errs, removePIDFile(c.dirs))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("localcluster: stopping: %w", err)
	}
	return nil
}

// openLog opens the log file of one binary; Stop closes it.
func (c *Cluster) openLog(binary string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(c.dirs.logs, binary+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	c.logs = append(c.logs, f)
	return f, nil
}
