// Package gateway wires the Redis-protocol gateway together: the RESP server
// (package resp) over the key space (package keyspace: locks through pkg/atlantis,
// pull statuses in Secrets through package kv), its metrics, and an HTTP server for
// /metrics, /healthz and /readyz. main and the tests build it the same way.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/metrics"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/resp"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// FieldManager is the field manager of the gateway's LockRequests (its Secrets'
// is kv.ManagedByValue, the same name), so that `kubectl get -o yaml
// --show-managed-fields` tells them apart from other clients'.
const FieldManager = kv.ManagedByValue

// Config is what the gateway needs besides the API server's address.
type Config struct {
	// Namespace holds the LockRequests of Atlantis's locks.
	Namespace string
	// StoreNamespace holds the Secrets of the other keys (default Namespace).
	StoreNamespace string
	// Username and Password, when Password is set, are the credentials clients
	// must give (Atlantis's --redis-username, --redis-password).
	Username, Password string
	// DB is the database index SELECT accepts (Atlantis's --redis-db).
	DB int
	// TLS, when not nil, makes the RESP listener speak TLS (Atlantis's
	// --redis-tls-enabled).
	TLS *tls.Config
	// CommandTimeout bounds each command's API calls.
	CommandTimeout time.Duration
	// ShutdownGrace bounds how long Run waits for commands in flight once its
	// context ends.
	ShutdownGrace time.Duration
	// Version is reported by HELLO.
	Version string
}

// Gateway is one gateway process's servers.
type Gateway struct {
	cfg    Config
	client client.WithWatch
	cache  cache.Cache
	// deletions hears the cache's LockRequest deletions for the fast release.
	deletions *keyspace.Deletions
	server    *resp.Server
	Space     *keyspace.Space
	registry  *prometheus.Registry
	log       logr.Logger
}

// New builds a gateway that reaches the API server through rc. Its metrics are on a
// registry of its own, with the Go and process collectors.
func New(rc *rest.Config, cfg Config, clk clock.PassiveClock, log logr.Logger) (*Gateway, error) {
	if cfg.StoreNamespace == "" {
		cfg.StoreNamespace = cfg.Namespace
	}
	// No cache behind this client: every read and write goes to the API server, so
	// that all gateway replicas (and a restarted one) answer from the same state.
	// (The LockRequest cache below only speeds up reads that it checks with it.)
	kc, err := client.NewWithWatch(rc, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		return nil, fmt.Errorf("registering the metrics: %w", err)
	}
	// The watch cache of the namespace's LockRequests, for the fast read path of
	// lock keys (keyspace/read.go), which checks every answer against the API
	// server. Run starts it.
	lrCache, err := cache.New(rc, cache.Options{
		Scheme:                      kc.Scheme(),
		DefaultNamespaces:           map[string]cache.Config{cfg.Namespace: {}},
		ReaderFailOnMissingInformer: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the LockRequest cache: %w", err)
	}
	// The cache is not started yet, so adding the index waits for nothing.
	if err := keyspace.IndexByKey(context.Background(), lrCache); err != nil {
		return nil, fmt.Errorf("indexing the LockRequest cache by lock key: %w", err)
	}
	lc := lockclient.New(kc, cfg.Namespace, lockclient.WithFieldManager(FieldManager))
	fast := &keyspace.Fast{Cached: lrCache, Direct: kc, Namespace: cfg.Namespace, Deletions: keyspace.NewDeletions()}
	space := keyspace.New(lc, kv.New(kc, cfg.StoreNamespace), fast, atlantis.WithCallTimeout(cfg.CommandTimeout))
	server := resp.New(space, resp.Config{
		Username:       cfg.Username,
		Password:       cfg.Password,
		DB:             cfg.DB,
		CommandTimeout: cfg.CommandTimeout,
		Clock:          clk,
		Observer:       m,
		Version:        cfg.Version,
		Log:            log,
	})
	return &Gateway{cfg: cfg, client: kc, cache: lrCache, deletions: fast.Deletions, server: server, Space: space, registry: reg, log: log}, nil
}

// Registry is the gateway's metrics registry.
func (g *Gateway) Registry() *prometheus.Registry { return g.registry }

// Run serves RESP on redisLn (wrapped in TLS when configured) and HTTP on httpLn
// until ctx ends, then shuts both down, letting commands in flight finish within
// ShutdownGrace.
func (g *Gateway) Run(ctx context.Context, redisLn, httpLn net.Listener) error {
	if g.cfg.TLS != nil {
		redisLn = tls.NewListener(redisLn, g.cfg.TLS)
	}
	if err := g.startCache(ctx); err != nil {
		return errors.Join(err, redisLn.Close(), httpLn.Close())
	}
	hs := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 2)
	go func() { errs <- g.server.Serve(redisLn) }()
	go func() {
		if err := hs.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("HTTP server: %w", err)
			return
		}
		errs <- nil
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		if runErr == nil {
			runErr = errors.New("the RESP server stopped")
		}
	}
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownGrace)
	defer cancel()
	return errors.Join(runErr, g.server.Shutdown(grace), hs.Shutdown(grace))
}

// startCache starts the LockRequest cache and waits (at most CommandTimeout) until
// it has listed the namespace, so that the first commands already use it.
func (g *Gateway) startCache(ctx context.Context) error {
	cacheCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.cache.Start(cacheCtx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, g.cfg.CommandTimeout)
	defer syncCancel()
	informer, err := g.cache.GetInformer(syncCtx, &lockingv1alpha1.LockRequest{})
	if err != nil {
		cancel()
		return errors.Join(fmt.Errorf("watching LockRequests in namespace %s: %w", g.cfg.Namespace, err), <-done)
	}
	if _, err := informer.AddEventHandler(g.deletions.Handler()); err != nil {
		cancel()
		return errors.Join(fmt.Errorf("following the deletions of LockRequests in namespace %s: %w", g.cfg.Namespace, err), <-done)
	}
	if !g.cache.WaitForCacheSync(syncCtx) {
		cancel()
		return errors.Join(fmt.Errorf("the LockRequest cache of namespace %s did not sync within %s", g.cfg.Namespace, g.cfg.CommandTimeout), <-done)
	}
	context.AfterFunc(ctx, cancel)
	return nil
}

// Handler serves /metrics, /healthz (the process serves) and /readyz (the API
// server answers a list of LockRequests in the namespace, which also proves the
// RBAC).
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// Ready checks that the API server answers and lets the gateway list LockRequests
// in its namespace and its Secrets in the store's.
func (g *Gateway) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CommandTimeout)
	defer cancel()
	var list lockingv1alpha1.LockRequestList
	if err := g.client.List(ctx, &list, client.InNamespace(g.cfg.Namespace), client.Limit(1)); err != nil {
		return fmt.Errorf("listing LockRequests in namespace %s: %w", g.cfg.Namespace, err)
	}
	var secrets corev1.SecretList
	if err := g.client.List(ctx, &secrets, client.InNamespace(g.cfg.StoreNamespace), client.MatchingLabels{kv.ManagedByLabel: kv.ManagedByValue}, client.Limit(1)); err != nil {
		return fmt.Errorf("listing the gateway's Secrets in namespace %s: %w", g.cfg.StoreNamespace, err)
	}
	return nil
}
