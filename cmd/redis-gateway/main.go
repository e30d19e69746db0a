// Command redis-gateway is a Redis-protocol server that an unmodified Atlantis
// (--locking-db-type=redis --redis-host ...) uses as its database: project locks
// and the global apply lock become atlantis-lock-operator LockRequests, and every
// other key Atlantis stores (pull request statuses) becomes a Secret. Run it as a
// sidecar in the Atlantis pod on 127.0.0.1 (the default), or as a Deployment
// behind a Service with a password and TLS. docs/usage.md shows both.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/gateway"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// passwordEnv may hold the password instead of --password-file.
const passwordEnv = "REDIS_GATEWAY_PASSWORD"

// flags are the command line.
type flags struct {
	listen, httpAddr                string
	namespace, storeNamespace       string
	username, passwordFile          string
	db                              int
	tlsCert, tlsKey                 string
	commandTimeout, shutdownGrace   time.Duration
	allowUnauthenticatedNonLoopback bool
}

func main() { os.Exit(run()) }

// run runs the gateway until SIGINT or SIGTERM and returns the exit code: 2 for a
// bad command line, 1 for a failure.
func run() int {
	var f flags
	flag.StringVar(&f.listen, "listen", "127.0.0.1:6379", "Address of the Redis-protocol listener (Atlantis's --redis-host and --redis-port). The default serves only the pod itself (sidecar); any other address needs --password-file (or $"+passwordEnv+") unless --allow-unauthenticated.")
	flag.StringVar(&f.httpAddr, "http-address", ":9121", "Address of /metrics, /healthz and /readyz.")
	flag.StringVar(&f.namespace, "namespace", "", "Namespace of Atlantis's LockRequests; defaults to the pod's namespace.")
	flag.StringVar(&f.storeNamespace, "store-namespace", "", "Namespace of the Secrets that hold the other keys (pull statuses); defaults to --namespace.")
	flag.StringVar(&f.username, "username", "default", "User name clients authenticate as (Atlantis's --redis-username; Redis's default user is \"default\").")
	flag.StringVar(&f.passwordFile, "password-file", "", "File holding the password clients must give (Atlantis's --redis-password); $"+passwordEnv+" is read when this is empty. No password: no authentication.")
	flag.IntVar(&f.db, "redis-db", 0, "The database index SELECT accepts (Atlantis's --redis-db).")
	flag.StringVar(&f.tlsCert, "tls-cert-file", "", "Certificate (PEM) of the Redis listener; with --tls-key-file the listener speaks only TLS (Atlantis's --redis-tls-enabled).")
	flag.StringVar(&f.tlsKey, "tls-key-file", "", "Private key (PEM) of --tls-cert-file.")
	flag.DurationVar(&f.commandTimeout, "command-timeout", 10*time.Second, "Longest time a command may spend on the API server. go-redis gives up on a reply after 3 s and retries.")
	flag.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "How long a stopping gateway waits for commands in flight.")
	flag.BoolVar(&f.allowUnauthenticatedNonLoopback, "allow-unauthenticated", false, "Serve an address beyond loopback without a password (only behind a NetworkPolicy that admits Atlantis alone).")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("redis-gateway")

	cfg, err := f.config(os.ReadFile, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redis-gateway:", err)
		return 2
	}
	rc, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redis-gateway: no Kubernetes configuration (in-cluster, --kubeconfig or $KUBECONFIG):", err)
		return 2
	}
	g, err := gateway.New(rc, cfg, clock.RealClock{}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redis-gateway:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := g.Ready(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "redis-gateway: the API server does not let this gateway work:", err)
		return 1
	}
	redisLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "redis-gateway: --listen %s: %v\n", f.listen, err)
		return 1
	}
	httpLn, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "redis-gateway: --http-address %s: %v\n", f.httpAddr, err)
		return 1
	}
	log.Info("serving", "listen", redisLn.Addr().String(), "http", httpLn.Addr().String(),
		"namespace", cfg.Namespace, "storeNamespace", cfg.StoreNamespace, "tls", cfg.TLS != nil, "auth", cfg.Password != "")
	if err := g.Run(ctx, redisLn, httpLn); err != nil {
		log.Error(err, "stopped")
		return 1
	}
	return 0
}

// config checks the flags and turns them into the gateway's configuration; every
// error names the flag. readFile and getenv are os.ReadFile and os.Getenv.
func (f *flags) config(readFile func(string) ([]byte, error), getenv func(string) string) (gateway.Config, error) {
	cfg := gateway.Config{
		Namespace:      f.namespace,
		StoreNamespace: f.storeNamespace,
		Username:       f.username,
		DB:             f.db,
		CommandTimeout: f.commandTimeout,
		ShutdownGrace:  f.shutdownGrace,
		Version:        version,
	}
	if cfg.Namespace == "" {
		ns, err := readFile(serviceAccountNamespaceFile)
		if err != nil {
			return cfg, fmt.Errorf("--namespace is empty and the pod's namespace is unknown: %w", err)
		}
		cfg.Namespace = strings.TrimSpace(string(ns))
	}
	for flagName, ns := range map[string]string{"--namespace": cfg.Namespace, "--store-namespace": f.storeNamespace} {
		if ns == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return cfg, fmt.Errorf("%s %q is not a namespace name: %s", flagName, ns, strings.Join(errs, "; "))
		}
	}
	if cfg.Username == "" {
		return cfg, errors.New("--username is empty; Redis's default user is \"default\"")
	}
	if f.db < 0 {
		return cfg, fmt.Errorf("--redis-db %d is negative", f.db)
	}
	if f.commandTimeout <= 0 {
		return cfg, fmt.Errorf("--command-timeout %s is not positive", f.commandTimeout)
	}
	if f.shutdownGrace < 0 {
		return cfg, fmt.Errorf("--shutdown-grace %s is negative", f.shutdownGrace)
	}
	switch {
	case f.passwordFile != "":
		data, err := readFile(f.passwordFile)
		if err != nil {
			return cfg, fmt.Errorf("--password-file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(data), "\r\n")
		if cfg.Password == "" {
			return cfg, fmt.Errorf("--password-file %s is empty", f.passwordFile)
		}
	default:
		cfg.Password = getenv(passwordEnv)
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return cfg, fmt.Errorf("--listen %q: %w", f.listen, err)
	}
	if _, _, err := net.SplitHostPort(f.httpAddr); err != nil {
		return cfg, fmt.Errorf("--http-address %q: %w", f.httpAddr, err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && cfg.Password == "" && !f.allowUnauthenticatedNonLoopback {
		return cfg, fmt.Errorf("--listen %s serves beyond loopback without a password: give --password-file (or $%s), or --allow-unauthenticated behind a NetworkPolicy", f.listen, passwordEnv)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return cfg, errors.New("--tls-cert-file and --tls-key-file go together: give both or neither")
	}
	if f.tlsCert != "" {
		cert, err := loadKeyPair(readFile, f.tlsCert, f.tlsKey)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	return cfg, nil
}

// loadKeyPair reads a certificate and its key, naming the flags on failure.
func loadKeyPair(readFile func(string) ([]byte, error), certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert-file: %w", err)
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-key-file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert-file %s and --tls-key-file %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}
