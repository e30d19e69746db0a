package lockclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// TestNotifyLostTellsTheHolder: a holder follows its hold with NotifyLost; when the
// key's Lease is deleted under it, the channel brings the Revoked status (which
// names the Lease) and closes, and Renew refuses the ended hold.
func TestNotifyLostTellsTheHolder(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	r := pullRequest("modules/vpc", 1, "alice")
	held := mustLock(ctx, t, c, r)
	lost := c.NotifyLost(ctx, held)

	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace(), Name: held.Request.Status.LockName}}
	if err := env.Client.Delete(ctx, lease); err != nil {
		t.Fatal(err)
	}
	select {
	case st, ok := <-lost:
		if !ok {
			t.Fatal("the channel closed without a status")
		}
		if st.State != lockclient.StateEnded || st.Reason != lockingv1alpha1.ReasonRevoked || !strings.Contains(st.Message, "Lease") {
			t.Errorf("lost with %s %s %q; want Ended Revoked naming the Lease", st.State, st.Reason, st.Message)
		}
	case <-ctx.Done():
		t.Fatal("no word of the lost hold")
	}
	if _, ok := <-lost; ok {
		t.Error("the channel brought a second status")
	}
	var ended *lockclient.EndedError
	if _, err := c.Renew(ctx, r); !errors.As(err, &ended) || ended.Status.Reason != lockingv1alpha1.ReasonRevoked {
		t.Errorf("Renew of the lost hold: %v; want an EndedError with reason Revoked", err)
	}
	if err := c.Unlock(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyLostStaysQuietWhileHeld: a released hold's watch ends with the caller's
// context, without a value; one given a status that does not hold reports it at
// once.
func TestNotifyLostStaysQuietWhileHeld(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	r := pullRequest("modules/vpc", 1, "alice")
	held := mustLock(ctx, t, c, r)
	wctx, cancel := context.WithCancel(ctx)
	lost := c.NotifyLost(wctx, held)
	// A renewal changes the request but not the hold.
	r2 := r
	if _, err := c.Renew(ctx, r2); err != nil {
		t.Fatal(err)
	}
	cancel()
	if st, ok := <-lost; ok {
		t.Errorf("a hold that stands was reported lost: %s %s %q", st.State, st.Reason, st.Message)
	}
	waiter := pullRequest("modules/vpc", 2, "bob")
	queued, err := c.TryLock(ctx, waiter)
	if err != nil {
		t.Fatal(err)
	}
	if st := <-c.NotifyLost(ctx, queued); st == nil || st.State != lockclient.StateQueued {
		t.Errorf("NotifyLost of a queued request: %v; want its Queued status at once", st)
	}
	var notHeld *lockclient.NotHeldError
	if _, err := c.Renew(ctx, waiter); !errors.As(err, &notHeld) {
		t.Errorf("Renew of a queued request: %v; want a NotHeldError", err)
	}
	for _, req := range []lockclient.Request{waiter, r} {
		if err := c.Unlock(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReleaseAndDeleteDeleteOnlyTheObjectTheyHeld: Release or Delete of an old
// hold's status leaves a newer request of the same name (same owner and key) alone.
func TestReleaseAndDeleteDeleteOnlyTheObjectTheyHeld(t *testing.T) {
	c := newClient(t)
	for _, let := range []struct {
		name    string
		release func(context.Context, *lockclient.Status) error
	}{{"Release", c.Release}, {"Delete", c.Delete}} {
		t.Run(let.name, func(t *testing.T) {
			ctx := deadline(t)
			r := pullRequest("modules/vpc", 1, "alice")
			first := mustLock(ctx, t, c, r)
			if err := let.release(ctx, first); err != nil {
				t.Fatal(err)
			}
			mustNotExist(ctx, t, c, r)
			second := mustLock(ctx, t, c, r)
			if second.Request.UID == first.Request.UID {
				t.Fatal("the second Lock adopted the released object")
			}
			if err := let.release(ctx, first); err != nil {
				t.Fatalf("%s of a gone object: %v", let.name, err)
			}
			if st, err := c.Get(ctx, r); err != nil || st.State != lockclient.StateAcquired || st.Request.UID != second.Request.UID {
				t.Errorf("after letting the old object go again: %v %v; want the new one still holding", st, err)
			}
			if err := c.Release(ctx, second); err != nil {
				t.Fatal(err)
			}
			mustNotExist(ctx, t, c, r)
		})
	}
}

// TestForceUnlockIsPinnedToTheHolderItRead: a force unlock prepared while pull 1
// held must not revoke pull 2, which got the key in between.
func TestForceUnlockIsPinnedToTheHolderItRead(t *testing.T) {
	ctx := deadline(t)
	c := newClient(t)
	first, second := pullRequest("modules/vpc", 1, "alice"), pullRequest("modules/vpc", 2, "bob")
	held := mustLock(ctx, t, c, first)
	if _, err := c.TryLock(ctx, second); err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, c, second, lockclient.StateQueued, 1)
	// The queue brings the ProjectLock, created after the waiter's status: wait
	// for it to show the holder before reading the lock.
	if _, err := lockclient.WaitForLock(ctx, c, first.Key().ObjectName(), func(pl *lockingv1alpha1.ProjectLock) (bool, error) {
		return pl != nil && pl.Status.Holder != nil && pl.Status.Holder.Request == held.Name(), nil
	}); err != nil {
		t.Fatalf("waiting for the ProjectLock to name %s: %v", held.Name(), err)
	}
	info, err := c.GetLock(ctx, first.Key())
	if err != nil || info == nil || info.Holder == nil {
		t.Fatalf("GetLock: %v %v", info, err)
	}
	if err := c.Unlock(ctx, first); err != nil {
		t.Fatal(err)
	}
	next := waitState(ctx, t, c, second, lockclient.StateAcquired, 0)
	// The ProjectLock names the new holder once its status is written, which can be
	// after the request's last change: so wait on the ProjectLock itself.
	_, err = lockclient.WaitForLock(ctx, c, first.Key().ObjectName(), func(pl *lockingv1alpha1.ProjectLock) (bool, error) {
		return pl != nil && pl.Status.Holder != nil && pl.Status.Holder.Request == next.Name(), nil
	})
	if err != nil {
		t.Fatalf("waiting for the ProjectLock to name %s: %v", next.Name(), err)
	}

	_, err = lockclient.DeletePinned(ctx, c, info)
	if !errors.Is(err, lockclient.ErrHolderChanged) {
		t.Errorf("force unlock read while pull 1 held, sent after pull 2 got the key: %v; want ErrHolderChanged", err)
	}
	if st, err := c.Get(ctx, second); err != nil || st.State != lockclient.StateAcquired {
		t.Errorf("pull 2 after the stale force unlock: %v %v; want still Acquired", st, err)
	}
	if _, err := c.ForceUnlock(ctx, second.Key()); err != nil {
		t.Errorf("a force unlock of the current holder: %v", err)
	}
	waitState(ctx, t, c, second, lockclient.StateEnded, 0)
	if err := c.Unlock(ctx, second); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
