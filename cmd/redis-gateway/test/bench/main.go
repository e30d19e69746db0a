// Command bench measures the Redis gateway the way Atlantis uses it: TryLock and
// Unlock through Atlantis v0.47.1's own Redis backend (server/core/redis.RedisDB,
// go-redis v9) against the gateway on a local control plane with the operator
// (bin/manager) running, beside the same calls against miniredis in the same run.
// `make bench` runs it after test/bench; GATEWAY_BENCH_ARGS passes flags.
//
// Each sample is one uncontended cycle on one lock key: TryLock of the free key (a
// grant: a LockRequest created and decided), TryLock of the held key by another
// pull (a refusal: a read), and Unlock (a release: the LockRequest deleted once the
// operator has let go). One client, one call at a time, as one Atlantis command
// makes them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	atlantisredis "github.com/runatlantis/atlantis/server/core/redis"
	"github.com/runatlantis/atlantis/server/events/models"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/gateway"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// options are the command-line flags.
type options struct {
	*benchutil.Flags
	samples, warmup int
	// listLocks and listSamples: List (Atlantis's lock list, its index page) is
	// timed listSamples times with listLocks locks held.
	listLocks, listSamples int
}

func main() { benchutil.Main("gateway bench", run) }

// results is the JSON output.
type results struct {
	benchutil.Run
	Samples int `json:"samples"`
	// Gateway and Miniredis are the latencies by call ("TryLock", "TryLock held",
	// "Unlock").
	Gateway   map[string]benchutil.Summary `json:"gateway"`
	Miniredis map[string]benchutil.Summary `json:"miniredis"`
	Rows      []benchutil.Row              `json:"rows"`
}

func run(ctx context.Context) (err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	f, err := benchutil.RegisterFlags(fs, "bench-gateway", "bench-gateway")
	if err != nil {
		return err
	}
	opts := options{Flags: f}
	fs.IntVar(&opts.samples, "samples", 300, "measured cycles (TryLock, TryLock held, Unlock) per backend")
	fs.IntVar(&opts.warmup, "warmup", 20, "unmeasured cycles first, per backend")
	fs.IntVar(&opts.listLocks, "list-locks", 50, "locks held while List (Atlantis's lock list) is timed")
	fs.IntVar(&opts.listSamples, "list-samples", 20, "timed List calls per backend")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if opts.samples < 1 || opts.warmup < 0 || opts.listLocks < 1 || opts.listSamples < 1 {
		return fmt.Errorf("-samples %d, -warmup %d, -list-locks %d, -list-samples %d: want at least 1, 0, 1 and 1", opts.samples, opts.warmup, opts.listLocks, opts.listSamples)
	}
	res := &results{Run: benchutil.NewRun(opts.Root), Samples: opts.samples}

	env, err := benchutil.StartEnv(ctx, opts.EnvOptions())
	if err != nil {
		return err
	}
	defer env.StopInto(&err)
	benchutil.Step("starting the operator (bin/manager)")
	mgr, err := managerproc.Start(managerproc.Options{
		Binary: filepath.Join(opts.Root, "bin", "manager"), Kubeconfig: env.Cluster.KubeconfigPath(),
		Args: []string{"--leader-elect=false"}, LogPath: env.LogPath("manager.log"),
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, mgr.Stop(20*time.Second)) }()
	if err := mgr.WaitLeader(ctx); err != nil {
		return err
	}

	benchutil.Step("starting the gateway in namespace %s", opts.Namespace)
	host, port, stopGateway, err := startGateway(ctx, env, opts.Namespace)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopGateway()) }()
	ours, err := atlantisredis.New(host, port, "", false, false, 0)
	if err != nil {
		return fmt.Errorf("redis.New (Atlantis) against the gateway: %w", err)
	}
	defer func() { _ = ours.Close() }()

	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return err
	}
	defer mr.Close()
	mrHost, mrPortText, err := net.SplitHostPort(mr.Addr())
	if err != nil {
		return err
	}
	mrPort, err := strconv.Atoi(mrPortText)
	if err != nil {
		return err
	}
	theirs, err := atlantisredis.New(mrHost, mrPort, "", false, false, 0)
	if err != nil {
		return fmt.Errorf("redis.New (Atlantis) against miniredis: %w", err)
	}
	defer func() { _ = theirs.Close() }()

	for _, b := range []struct {
		name string
		db   *atlantisredis.RedisDB
		into *map[string]benchutil.Summary
	}{{"miniredis", theirs, &res.Miniredis}, {"the gateway", ours, &res.Gateway}} {
		benchutil.Step("measuring %s: %d cycles after %d warm-up cycles, then List with %d locks %d times", b.name, opts.samples, opts.warmup, opts.listLocks, opts.listSamples)
		if *b.into, err = measure(b.db, opts.warmup, opts.samples); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		list, err := measureList(b.db, opts.listLocks, opts.listSamples)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		(*b.into)["List"] = list
	}
	res.Finish(nil)
	for _, call := range []string{"TryLock", "TryLock held", "Unlock", "List"} {
		g, m := res.Gateway[call], res.Miniredis[call]
		metric := "gateway " + call + " P50 / P99 (RedisDB)"
		if call == "List" {
			metric = fmt.Sprintf("gateway List of %d locks P50 / P99 (RedisDB)", opts.listLocks)
		}
		res.Rows = append(res.Rows, benchutil.Row{
			Metric:   metric,
			Measured: fmt.Sprintf("%.2f / %.2f ms", g.P50MS, g.P99MS),
			Target:   fmt.Sprintf("%.3f / %.3f ms", m.P50MS, m.P99MS),
		})
	}
	res.PrintHeader(os.Stdout)
	fmt.Fprintf(os.Stdout, "%d cycles per backend; each cycle: TryLock (free key), TryLock (held by another pull), Unlock; then %d List calls with %d locks held\n", opts.samples, opts.listSamples, opts.listLocks)
	if err := benchutil.PrintRows(os.Stdout, "miniredis, same run", res.Rows); err != nil {
		return err
	}
	if opts.JSONPath != "" {
		return benchutil.WriteJSON(opts.JSONPath, res)
	}
	return nil
}

// startGateway runs the gateway in this process on a loopback port.
func startGateway(ctx context.Context, env *benchutil.Env, namespace string) (string, int, func() error, error) {
	g, err := gateway.New(env.RESTConfig(), gateway.Config{Namespace: namespace, CommandTimeout: 10 * time.Second, ShutdownGrace: 5 * time.Second, Version: "bench"},
		clock.RealClock{}, ctrl.Log.WithName("gateway"))
	if err != nil {
		return "", 0, nil, err
	}
	redisLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	httpPort, err := localcluster.FreeLoopbackPort()
	if err != nil {
		return "", 0, nil, err
	}
	httpLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		return "", 0, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, redisLn, httpLn) }()
	addr := redisLn.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port, func() error { cancel(); return <-done }, nil
}

// measure runs warmup and then samples cycles on db and returns the latencies.
func measure(db *atlantisredis.RedisDB, warmup, samples int) (map[string]benchutil.Summary, error) {
	project := models.NewProject("acme/infra", "modules/vpc", "")
	lock := func(pull int) models.ProjectLock {
		return models.ProjectLock{
			Project: project, Workspace: "default", User: models.User{Username: "bench"},
			Pull: models.PullRequest{Num: pull, BaseRepo: models.Repo{FullName: "acme/infra", Owner: "acme", Name: "infra"}},
			Time: time.Unix(1_800_000_000, 0),
		}
	}
	took := map[string][]time.Duration{}
	for i := range warmup + samples {
		start := time.Now()
		ok, _, err := db.TryLock(lock(1))
		tryLock := time.Since(start)
		if err != nil || !ok {
			return nil, fmt.Errorf("cycle %d: TryLock of the free key: acquired %t, error %w", i, ok, err)
		}
		start = time.Now()
		ok, holder, err := db.TryLock(lock(2))
		held := time.Since(start)
		if err != nil || ok || holder.Pull.Num != 1 {
			return nil, fmt.Errorf("cycle %d: TryLock of the held key: acquired %t, holder %d, error %w", i, ok, holder.Pull.Num, err)
		}
		start = time.Now()
		released, err := db.Unlock(project, "default")
		unlock := time.Since(start)
		if err != nil || released == nil {
			return nil, fmt.Errorf("cycle %d: Unlock: released %v, error %w", i, released, err)
		}
		if i >= warmup {
			took["TryLock"] = append(took["TryLock"], tryLock)
			took["TryLock held"] = append(took["TryLock held"], held)
			took["Unlock"] = append(took["Unlock"], unlock)
		}
	}
	out := map[string]benchutil.Summary{}
	for call, d := range took {
		out[call] = benchutil.Summarize(d)
	}
	return out, nil
}

// measureList takes n locks (one key each) through db, times List samples times,
// and releases them again.
func measureList(db *atlantisredis.RedisDB, n, samples int) (benchutil.Summary, error) {
	projects := make([]models.Project, n)
	for i := range projects {
		projects[i] = models.NewProject("acme/infra", fmt.Sprintf("stacks/s%03d", i), "")
		ok, _, err := db.TryLock(models.ProjectLock{
			Project: projects[i], Workspace: "default", User: models.User{Username: "bench"},
			Pull: models.PullRequest{Num: 1, BaseRepo: models.Repo{FullName: "acme/infra", Owner: "acme", Name: "infra"}},
			Time: time.Unix(1_800_000_000, 0),
		})
		if err != nil || !ok {
			return benchutil.Summary{}, fmt.Errorf("taking lock %d of %d for List: acquired %t, error %w", i, n, ok, err)
		}
	}
	took := make([]time.Duration, 0, samples)
	for range samples {
		start := time.Now()
		locks, err := db.List()
		took = append(took, time.Since(start))
		if err != nil || len(locks) != n {
			return benchutil.Summary{}, fmt.Errorf("listing the locks: %d, want %d, error %w", len(locks), n, err)
		}
	}
	for _, p := range projects {
		if _, err := db.Unlock(p, "default"); err != nil {
			return benchutil.Summary{}, fmt.Errorf("releasing %s after List: %w", p.Path, err)
		}
	}
	return benchutil.Summarize(took), nil
}
