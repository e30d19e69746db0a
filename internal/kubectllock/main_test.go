package kubectllock

// The plugin's commands run here against a real kube-apiserver and etcd (envtest)
// with the operator embedded, through a kubeconfig file, as a person runs them.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// testTimeout bounds every wait of a test; reaching it is a failure.
const testTimeout = 30 * time.Second

var (
	env *testenv.Env
	// kubeconfig reaches env as the admin; its context's namespace is "default".
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kubectl-lock-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfg := config.Default()
	cfg.WorkerCount = 4
	return testenv.MainWithOperator(m, cfg, nil, func(e *testenv.Env) error {
		env = e
		kubeconfig = filepath.Join(dir, "kubeconfig")
		return env.WriteKubeconfig(kubeconfig, "default")
	})
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kubectl-lock-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func deadline(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// output is an io.Writer that tests can wait on: waitFor returns when what was
// written so far contains a string.
type output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.b.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return n, err
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func (o *output) waitFor(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	for {
		o.mu.Lock()
		text, ch := o.b.String(), o.changed
		o.mu.Unlock()
		if strings.Contains(text, want) {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %q in the output: %v; output so far:\n%s", want, ctx.Err(), text)
		}
	}
}

// background runs the plugin in a goroutine with its own output; wait returns its
// exit code.
type background struct {
	out, errOut *output
	done        chan int
}

func runBackground(ctx context.Context, args ...string) *background {
	b := &background{out: newOutput(), errOut: newOutput(), done: make(chan int, 1)}
	a := &App{Stdin: strings.NewReader(""), Stdout: b.out, Stderr: b.errOut, Clock: clock.RealClock{}}
	go func() { b.done <- a.Run(ctx, args) }()
	return b
}

func (b *background) wait(ctx context.Context, t *testing.T) int {
	t.Helper()
	select {
	case code := <-b.done:
		return code
	case <-ctx.Done():
		t.Fatalf("the command did not finish: %v; output:\n%s%s", ctx.Err(), b.out, b.errOut)
		return -1
	}
}
