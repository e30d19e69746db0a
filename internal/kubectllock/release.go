package kubectllock

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

func runRelease(ctx context.Context, a *App, args []string) error {
	var cf clusterFlags
	var kf keyFlags
	fs := newFlagSet("release", "NAME | --repo R (--pull N | --user U) [--path P] [--workspace W] [--project N]",
		"Release a lock, or leave its queue, by deleting the LockRequest: by its name (as `list -o wide`\n"+
			"and `acquire` show it), or by the key and owner that `acquire` was given. It returns once\n"+
			"the operator has handed the lock to the next waiter.",
		a.Stderr, &cf)
	kf.register(fs, false)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var name string
	switch {
	case len(pos) > 1:
		return usagef("release takes one LockRequest name, got %q", pos)
	case len(pos) == 1 && kf.repo != "":
		return usagef("give a LockRequest name or --repo, not both")
	case len(pos) == 1:
		name = pos[0]
	case kf.repo == "":
		return usagef("give the LockRequest name, or the key (--repo, --path, ...) and the owner (--pull or --user)")
	default:
		r, err := kf.request(false)
		if err != nil {
			return err
		}
		name = lockclient.RequestName(r)
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	st, err := c.GetName(ctx, name)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("nothing to release: no LockRequest %s in namespace %s (see `kubectl lock list -o wide`)", name, c.Namespace())
	}
	if err != nil {
		return err
	}
	if err := c.UnlockName(ctx, name); err != nil {
		return err
	}
	key := st.Request.Spec.Key()
	switch st.State {
	case lockclient.StateAcquired:
		fmt.Fprintf(a.Stdout, "released %s (LockRequest %s, fencing token %s)\n", key, name, st.FencingToken)
	case lockclient.StateQueued:
		fmt.Fprintf(a.Stdout, "left the queue of %s (LockRequest %s was at position %d)\n", key, name, st.Position)
	case lockclient.StateEnded:
		fmt.Fprintf(a.Stdout, "deleted LockRequest %s for %s, which had ended (%s)\n", name, key, st.Reason)
	default:
		fmt.Fprintf(a.Stdout, "withdrew LockRequest %s for %s before the operator decided\n", name, key)
	}
	info, err := c.GetLock(ctx, key)
	if err != nil {
		return err
	}
	if st.State == lockclient.StateAcquired && info != nil && info.Holder == nil && len(info.Queue) > 0 {
		// Released with others waiting: the request is gone at once, the operator's
		// hand-off (a compare-and-swap of the key's Lease) comes after, and release
		// says who holds the key.
		if err := awaitHandOff(ctx, a, c, st); err != nil {
			return err
		}
		if info, err = c.GetLock(ctx, key); err != nil {
			return err
		}
	}
	printLock(a, key, info)
	return nil
}

// handOffTimeout bounds release's wait for the operator to hand the key on.
const handOffTimeout = 30 * time.Second

// awaitHandOff waits, after the release of the hold st describes, until the operator
// has handed the key to the next waiter. Without permission to watch Leases, or
// after handOffTimeout, it says so and lets release report the key as it stands.
func awaitHandOff(ctx context.Context, a *App, c *lockclient.Client, st *lockclient.Status) error {
	key := st.Request.Spec.Key()
	wctx, cancel := context.WithTimeout(ctx, handOffTimeout)
	defer cancel()
	err := c.AwaitRelease(wctx, st)
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		fmt.Fprintf(a.Stderr, "cannot follow the hand-off of %s (%v); the next waiter gets it once the operator acts\n", key, err)
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(a.Stderr, "the operator has not handed %s on within %s: is it running?\n", key, handOffTimeout)
		return nil
	}
	return err
}

// printHolder says who holds key now.
func printHolder(ctx context.Context, a *App, c *lockclient.Client, key lockkey.Key) error {
	info, err := c.GetLock(ctx, key)
	if err != nil {
		return err
	}
	printLock(a, key, info)
	return nil
}

// printLock says who holds key, as info (nil: no lock) shows it.
func printLock(a *App, key lockkey.Key, info *lockclient.LockInfo) {
	if info == nil || info.Holder == nil {
		fmt.Fprintf(a.Stdout, "%s is free\n", key)
		return
	}
	fmt.Fprintf(a.Stdout, "%s is now held by %s (fencing token %s), %d waiting\n", key, owner(info.Holder),
		dash(info.Holder.Status.FencingToken), len(info.Queue))
}
