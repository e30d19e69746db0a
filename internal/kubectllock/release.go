package kubectllock

import (
	"context"
	"fmt"

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
	return printHolder(ctx, a, c, key)
}

// printHolder says who holds key now.
func printHolder(ctx context.Context, a *App, c *lockclient.Client, key lockkey.Key) error {
	info, err := c.GetLock(ctx, key)
	if err != nil {
		return err
	}
	if info == nil || info.Holder == nil {
		fmt.Fprintf(a.Stdout, "%s is free\n", key)
		return nil
	}
	fmt.Fprintf(a.Stdout, "%s is now held by %s (fencing token %s), %d waiting\n", key, owner(info.Holder),
		dash(info.Holder.Status.FencingToken), len(info.Queue))
	return nil
}
