package kubectllock

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

func runAcquire(ctx context.Context, a *App, args []string) error {
	var cf clusterFlags
	var kf keyFlags
	fs := newFlagSet("acquire", "--repo R --user U [--path P] [--workspace W] [--project N] [--pull N] [--priority P] [--queue-timeout D] [--ttl D]",
		"Take a lock. If another owner holds it, wait in its queue and show the position as it changes;\n"+
			"Ctrl-C withdraws the request. Once acquired, the command exits and the lock stays held\n"+
			"until `kubectl lock release` (or the --ttl passes).",
		a.Stderr, &cf)
	kf.register(fs, true)
	pos, err := parse(fs, args)
	switch {
	case err != nil:
		return err
	case len(pos) > 0:
		return usagef("acquire takes only flags, got %q", pos)
	}
	r, err := kf.request(true)
	if err != nil {
		return err
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	name := lockclient.RequestName(r)
	fmt.Fprintf(a.Stdout, "requesting %s for %s (LockRequest %s/%s)\n", r.Key(), r.Owner(), c.Namespace(), name)
	var shown *lockclient.Status
	st, err := c.LockWithProgress(ctx, r, func(s *lockclient.Status) {
		if s.State != lockclient.StateQueued {
			return
		}
		if shown != nil && shown.Position == s.Position && blocker(shown) == blocker(s) {
			return
		}
		shown = s
		fmt.Fprintf(a.Stdout, "queued at position %d behind %s\n", s.Position, blocker(s))
	})
	if err != nil {
		var ended *lockclient.EndedError
		switch {
		case errors.As(err, &ended):
			return fmt.Errorf("%s was not acquired: %s: %s", r.Key(), ended.Status.Reason, ended.Status.Message)
		case ctx.Err() != nil:
			return withdrawn(ctx, c, name, err)
		}
		return err
	}
	fmt.Fprintf(a.Stdout, "acquired %s, fencing token %s\n", r.Key(), st.FencingToken)
	if exp := st.Request.Status.ExpiresTime; exp != nil {
		fmt.Fprintf(a.Stdout, "the hold expires at %s unless renewed (spec.renewTime)\n", exp.UTC().Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintf(a.Stdout, "it stays held until released: kubectl lock release -n %s %s\n", c.Namespace(), name)
	return nil
}

// blocker names who a queued request waits for.
func blocker(s *lockclient.Status) string {
	if s.BlockedBy == nil {
		return "nobody yet"
	}
	return s.BlockedBy.Owner
}

// withdrawn reports an interrupted acquire: the client deletes the request when its
// context ends; this checks, with a fresh context, that it is gone.
func withdrawn(ctx context.Context, c *lockclient.Client, name string, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockclient.DefaultCleanupTimeout)
	defer cancel()
	_, err := c.GetName(cctx, name)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("withdrew LockRequest %s/%s: %w", c.Namespace(), name, ctx.Err())
	}
	return fmt.Errorf("LockRequest %s/%s may still exist; remove it with `kubectl lock release -n %s %s`: %w",
		c.Namespace(), name, c.Namespace(), name, errors.Join(cause, err))
}
