package gateway_test

// The tests of this package run the gateway in the test process against a real
// kube-apiserver and etcd (envtest, the binaries of the repository's bin/, built by
// `make tools`) with the operator embedded as cmd/main.go sets it up, and drive it
// with Atlantis v0.47.1's own Redis backend (server/core/redis.RedisDB, over
// go-redis v9) side by side with the same calls against miniredis, the in-memory
// Redis that Atlantis's own tests use.

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	atlantisredis "github.com/runatlantis/atlantis/server/core/redis"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/gateway"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.MainWithOperator(m, config.Default(), nil, func(e *testenv.Env) error {
		env = e
		return nil
	}))
}

// newNamespace makes a namespace of its own for one test, so that tests never see
// each other's locks and keys.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gateway-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// running is a gateway serving on loopback.
type running struct {
	*gateway.Gateway
	host     string
	port     int
	httpAddr string
	stop     func() error
}

// startGateway runs a gateway for namespace ns until the test ends (or stop).
// change, when not nil, adjusts its configuration first.
func startGateway(t testing.TB, ns string, change func(*gateway.Config)) *running {
	t.Helper()
	cfg := gateway.Config{Namespace: ns, CommandTimeout: 10 * time.Second, ShutdownGrace: 5 * time.Second, Version: "test"}
	if change != nil {
		change(&cfg)
	}
	g, err := gateway.New(env.Config, cfg, clock.RealClock{}, ctrl.Log.WithName("gateway"))
	if err != nil {
		t.Fatal(err)
	}
	redisLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, redisLn, httpLn) }()
	addr := redisLn.Addr().(*net.TCPAddr)
	r := &running{Gateway: g, host: addr.IP.String(), port: addr.Port, httpAddr: httpLn.Addr().String()}
	stopped := false
	r.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stopping the gateway: %v", err)
		}
	})
	return r
}

// addr is host:port of the gateway's RESP listener.
func (r *running) addr() string { return net.JoinHostPort(r.host, strconv.Itoa(r.port)) }

// redisDB connects Atlantis's own Redis backend to the gateway, as Atlantis's
// server.go does for --locking-db-type=redis --redis-host --redis-port
// (--redis-password when password is not empty). It runs Atlantis's start-up lock
// key migration, as every Atlantis start does.
func (r *running) redisDB(t testing.TB, password string) *atlantisredis.RedisDB {
	t.Helper()
	db, err := atlantisredis.New(r.host, r.port, password, false, false, 0)
	if err != nil {
		t.Fatalf("Atlantis's redis.New against the gateway: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newMiniredis starts miniredis and connects Atlantis's Redis backend to it.
func newMiniredis(t testing.TB) (*miniredis.Miniredis, *atlantisredis.RedisDB) {
	t.Helper()
	mr := miniredis.RunT(t)
	return mr, connectMiniredis(t, mr)
}

// connectMiniredis connects one more Atlantis Redis backend to mr.
func connectMiniredis(t testing.TB, mr *miniredis.Miniredis) *atlantisredis.RedisDB {
	t.Helper()
	host, portText, err := net.SplitHostPort(mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	db, err := atlantisredis.New(host, port, "", false, false, 0)
	if err != nil {
		t.Fatalf("Atlantis's redis.New against miniredis: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// errorText is err's text, "" for nil, for messages.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
