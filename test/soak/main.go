// Command soak runs mixed lock traffic through pkg/lockclient against the operator
// for a set time, on the local control plane, and checks the history afterwards.
// The operator runs as its own process (bin/manager, built by `make build`), so that
// its memory is its own. `make soak DURATION=5m` runs it; SOAK_ARGS passes flags.
//
// -clients workers each run, until -duration has passed, scenarios picked at random:
// holds of shared keys (contended by every worker), holds renewed within a short
// ttl, waits that end QueueTimeout, holds that expire (ttl without renewal) with a
// waiter served after them, force unlocks (deleting the ProjectLock) with a waiter
// served after them, deliberate deadlocks (two owners each holding one key and
// waiting for the other's), fail-fast conflicts and full queues. Then it
//
//   - checks every grant with test/harness/lockcheck, timed by the operator (the Lease's
//     acquireTime in the version that is the grant's fencing token) against when
//     the previous holder let go: no two owners hold one key at once, and fencing
//     tokens grow per key;
//   - checks every request's life, as a watch saw it: a path the lock allows
//     (undecided, queued, held, ended) and exactly one end, or still there queued;
//   - queues five waiters of different priorities behind one holder and checks
//     their positions and the ProjectLock's queue, and every other queue left;
//   - deletes every LockRequest and checks that no ProjectLock or Lease is left;
//   - reports the operator's resident memory over the run (sampled every
//     -sample-interval): first, last, maximum and trend.
//
// The exit code is 1 when the run fails or any check finds a violation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
)

// options are the command-line flags.
type options struct {
	*benchutil.Flags
	duration       time.Duration
	clients        int
	keys           int
	maxQueue       int
	seed           uint64
	sampleInterval time.Duration
	manager        string
}

// afterTraffic bounds what follows the traffic (the checks and the cleanup), so
// that the whole run is bounded by -duration plus this.
const afterTraffic = 5 * time.Minute

func main() { benchutil.Main("soak", run) }

func run(ctx context.Context) error {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	limit := opts.duration + afterTraffic
	ctx, cancel := context.WithTimeoutCause(ctx, limit, fmt.Errorf("the soak took longer than -duration plus %s (%s)", afterTraffic, limit))
	defer cancel()

	res := &Results{Run: benchutil.NewRun(opts.Root), Duration: opts.duration, Clients: opts.clients, Keys: opts.keys, Seed: opts.seed}
	runErr := soak(ctx, opts, res)
	res.Finish(runErr)
	if err := res.printReport(os.Stdout); err != nil {
		return errors.Join(runErr, err)
	}
	if opts.JSONPath != "" {
		if err := benchutil.WriteJSON(opts.JSONPath, res); err != nil {
			return errors.Join(runErr, fmt.Errorf("writing %s: %w", opts.JSONPath, err))
		}
	}
	if runErr != nil {
		return runErr
	}
	if n := res.violations(); n > 0 {
		return fmt.Errorf("%d violations", n)
	}
	return nil
}

// parseFlags reads the flags; paths default to the repository's bin/ and config/.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	common, err := benchutil.RegisterFlags(fs, "soak", "soak")
	if err != nil {
		return options{}, err
	}
	o := options{Flags: common}
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "how long the traffic runs (the checks and the cleanup come after)")
	fs.IntVar(&o.clients, "clients", 6, "concurrent workers")
	fs.IntVar(&o.keys, "keys", 6, "keys shared by all workers")
	fs.IntVar(&o.maxQueue, "max-queue-length", 5, "the operator's max_queue_length (at least 5: the final queue check queues five waiters)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the scenario choice")
	fs.DurationVar(&o.sampleInterval, "sample-interval", 5*time.Second, "how often the operator's memory is sampled")
	fs.StringVar(&o.manager, "manager", filepath.Join(common.Root, "bin", "manager"), "the operator's binary (make build)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.duration <= 0 || o.clients < 2 || o.keys < 1 || o.maxQueue < 5 || o.sampleInterval <= 0 {
		return o, errors.New("-duration and -sample-interval must be positive, -clients at least 2, -keys at least 1, -max-queue-length at least 5")
	}
	return o, nil
}

// pickScenario chooses a scenario by weight.
func pickScenario(rnd *rand.Rand) scenario {
	total := 0
	for _, s := range scenarios {
		total += s.weight
	}
	n := rnd.IntN(total)
	for _, s := range scenarios {
		if n < s.weight {
			return s
		}
		n -= s.weight
	}
	return scenarios[0]
}
