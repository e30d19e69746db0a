package lockclient_test

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// newLocks connects as any program does: config.GetConfig reads --kubeconfig,
// $KUBECONFIG, the in-cluster service account or ~/.kube/config.
func newLocks(namespace string) (*lockclient.Client, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, err
	}
	kc, err := client.NewWithWatch(cfg, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		return nil, err
	}
	return lockclient.New(kc, namespace), nil
}

// Take the lock of a project for a pull request, work under it, and release it.
func ExampleClient_Lock() {
	locks, err := newLocks("atlantis")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	req := lockclient.Request{
		Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc"},
		Pull:    &lockingv1alpha1.PullRequestRef{Number: 42, Author: "alice"},
		User:    lockingv1alpha1.UserRef{Username: "alice"},
	}
	// Lock waits in the queue if another pull holds the key; cancelling ctx withdraws.
	st, err := locks.Lock(ctx, req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.State, "by", st.Request.Status.Owner, "with a fencing token:", st.FencingToken != "")

	// ... plan and apply, passing st.FencingToken to what checks it ...

	// Unlock returns once the operator has handed the key to the next waiter.
	if err := locks.Unlock(ctx, req); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Acquired by acme/infra#42 with a fencing token: true
}

// TryLock answers at once, as Atlantis's own locking does: a zero QueueTimeout fails
// with Conflict when another owner holds the key; without one, the request queues.
func ExampleClient_TryLock() {
	locks, err := newLocks("atlantis")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pull := func(n int32, user string) lockclient.Request {
		return lockclient.Request{
			Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "envs/prod"},
			Pull:    &lockingv1alpha1.PullRequestRef{Number: n},
			User:    lockingv1alpha1.UserRef{Username: user},
		}
	}
	holder, failFast, waiter := pull(42, "alice"), pull(57, "bob"), pull(61, "carol")
	failFast.QueueTimeout = new(time.Duration) // 0s: do not queue

	for _, r := range []lockclient.Request{holder, failFast, waiter} {
		st, err := locks.TryLock(ctx, r)
		if err != nil {
			fmt.Println(err)
			return
		}
		switch st.State {
		case lockclient.StateAcquired:
			fmt.Printf("%s: acquired\n", r.Owner())
		case lockclient.StateQueued:
			fmt.Printf("%s: queued at position %d behind %s\n", r.Owner(), st.Position, st.BlockedBy.Owner)
		case lockclient.StateEnded:
			fmt.Printf("%s: %s, held by %s\n", r.Owner(), st.Reason, st.BlockedBy.Owner)
		}
	}

	// The queued request stays queued until it gets the lock or is unlocked.
	for _, r := range []lockclient.Request{waiter, holder} {
		if err := locks.Unlock(ctx, r); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// acme/infra#42: acquired
	// acme/infra#57: Conflict, held by acme/infra#42
	// acme/infra#61: queued at position 1 behind acme/infra#42
}

// List shows every lock of the namespace with its holder and queue.
func ExampleClient_List() {
	locks, err := newLocks("atlantis")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	alice := lockclient.Request{
		Project: lockingv1alpha1.ProjectRef{Repository: "acme/network"},
		User:    lockingv1alpha1.UserRef{Username: "alice"},
	}
	bob := alice
	bob.User.Username = "bob"
	if _, err := locks.Lock(ctx, alice); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := locks.TryLock(ctx, bob); err != nil {
		fmt.Println(err)
		return
	}

	infos, err := locks.List(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, info := range infos {
		holder := "nobody" // a key can have waiters and, for a moment, no holder
		if info.Holder != nil {
			holder = info.Holder.Status.Owner
		}
		fmt.Printf("%s held by %s\n", info.Key, holder)
		for _, w := range info.Queue {
			fmt.Printf("  %d. %s\n", w.Status.Position, w.Status.Owner)
		}
	}

	for _, r := range []lockclient.Request{bob, alice} {
		if err := locks.Unlock(ctx, r); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// acme/network/./default/ held by alice
	//   1. bob
}

// RequestName is the same for every call of one owner for one key, so a retried
// Lock or TryLock finds the request the first call made.
func ExampleRequestName() {
	req := lockclient.Request{
		Project: lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc"},
		Pull:    &lockingv1alpha1.PullRequestRef{Number: 42},
		User:    lockingv1alpha1.UserRef{Username: "alice"},
	}
	fmt.Println(lockclient.RequestName(req))
	req.User.Username = "bob" // another person planning the same pull: the same owner
	fmt.Println(lockclient.RequestName(req))
	// Output:
	// pr42-acme-infra-modules-vpc-default-fdydtzlwhl
	// pr42-acme-infra-modules-vpc-default-fdydtzlwhl
}
