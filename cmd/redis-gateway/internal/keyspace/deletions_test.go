package keyspace

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
)

func request(uid types.UID) *lockingv1alpha1.LockRequest {
	return &lockingv1alpha1.LockRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: string(uid), UID: uid}}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDeletionsCloseTheWaitsOfTheDeletedRequest(t *testing.T) {
	d := NewDeletions()
	h := d.Handler()
	a1, stopA1 := d.Expect("a")
	defer stopA1()
	a2, stopA2 := d.Expect("a")
	defer stopA2()
	b, stopB := d.Expect("b")
	defer stopB()

	h.OnDelete(request("c"))
	if closed(a1) || closed(a2) || closed(b) {
		t.Fatal("the deletion of another request closed a wait")
	}
	h.OnUpdate(request("a"), request("a"))
	if closed(a1) {
		t.Fatal("an update closed the wait on a deletion")
	}
	h.OnDelete(request("a"))
	if !closed(a1) || !closed(a2) {
		t.Fatal("the deletion of a did not close both waits on it")
	}
	if closed(b) {
		t.Fatal("the deletion of a closed the wait on b")
	}
	// A deletion the informer learned of from a new list comes as a tombstone.
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/b", Obj: request("b")})
	if !closed(b) {
		t.Fatal("the tombstone of b did not close the wait on it")
	}
	if len(d.waiting) != 0 {
		t.Fatalf("waits left after the deletions: %v", d.waiting)
	}
}

func TestDeletionsStopForgetsTheWait(t *testing.T) {
	d := NewDeletions()
	kept, stopKept := d.Expect("a")
	defer stopKept()
	_, stop := d.Expect("a")
	stop()
	if n := len(d.waiting["a"]); n != 1 {
		t.Fatalf("after one of two waits stopped, %d are left; want 1", n)
	}
	stopKept()
	if len(d.waiting) != 0 {
		t.Fatalf("waits left after both stopped: %v", d.waiting)
	}
	d.Handler().OnDelete(request("a"))
	if closed(kept) {
		t.Fatal("a stopped wait was closed")
	}
}

// A second release of a key can read its holder before a first release deletes it
// and begin its wait after the cache saw the deletion: that wait ends at once.
func TestDeletionsExpectOfADeletionAlreadySeen(t *testing.T) {
	d := NewDeletions()
	h := d.Handler()
	h.OnDelete(request("a"))
	seen, stop := d.Expect("a")
	defer stop()
	if !closed(seen) {
		t.Fatal("a wait on a deletion seen before did not end at once")
	}
	if len(d.waiting) != 0 {
		t.Fatalf("a wait on a deletion seen before was kept: %v", d.waiting)
	}
	if notYet, stop := d.Expect("b"); closed(notYet) {
		stop()
		t.Fatal("a wait on a deletion not seen yet ended at once")
	} else {
		stop()
	}
}

func TestDeletionsForgetTheOldestBeyondRecentDeletions(t *testing.T) {
	d := NewDeletions()
	h := d.Handler()
	for i := range recentDeletions + 1 {
		h.OnDelete(request(types.UID(fmt.Sprintf("r%d", i))))
	}
	h.OnDelete(request("r1")) // seen twice: remembered once
	if len(d.recent) != recentDeletions || len(d.recentOrder) != recentDeletions {
		t.Fatalf("remembered %d deletions (%d in order); want %d", len(d.recent), len(d.recentOrder), recentDeletions)
	}
	oldest, stop := d.Expect("r0")
	defer stop()
	if closed(oldest) {
		t.Fatal("the oldest deletion is still known after recentDeletions more")
	}
	for _, uid := range []types.UID{"r1", types.UID(fmt.Sprintf("r%d", recentDeletions))} {
		seen, stop := d.Expect(uid)
		stop()
		if !closed(seen) {
			t.Fatalf("the deletion of %s, among the latest, is not known", uid)
		}
	}
}
