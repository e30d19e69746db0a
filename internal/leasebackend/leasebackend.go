// Package leasebackend stores the orchestrator's lock records in coordination.k8s.io
// Lease objects. Every write is a compare-and-swap on the Lease's resourceVersion, so
// that two operators that both think they lead can never grant one key twice: the
// slower one gets 409 Conflict and decides again.
package leasebackend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Annotations and labels of the Leases this backend writes.
const (
	// RevokedForAnnotation records the ProjectLock UID whose force unlock the Lease
	// has served (orchestrator.Record.RevokedFor).
	RevokedForAnnotation = "locking.runatlantis.io/revoked-for"
	// KeyAnnotation shows the Atlantis lock key, for people reading the Lease.
	KeyAnnotation = "locking.runatlantis.io/key"
	// ManagedByLabel marks the Leases of this operator.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value.
	ManagedByValue = lockingv1alpha1.FieldManager
)

// Backend is an orchestrator.Backend over Leases.
//
// Reads come from reader, normally the manager's informer cache. A cache lags behind
// the backend's own writes, so Backend remembers the last Lease it wrote per key and
// answers with whichever of the two is newer (resourceVersions of one resource are
// comparable integers): a hand-off right after a grant then needs no conflict and
// retry. A stale read is only ever slow, never wrong: the write's compare-and-swap
// refuses it.
type Backend struct {
	reader client.Reader
	// live reads the API server itself: it confirms a record before a hold is
	// ended for want of it, and tells a foreign Lease from a conflict.
	live   client.Reader
	writer client.Client

	mu      sync.Mutex
	written map[types.NamespacedName]*coordinationv1.Lease
}

var _ orchestrator.Backend = (*Backend)(nil)

// New returns a Backend reading through reader (normally the informer cache),
// confirming through live (a reader of the API server itself, such as the manager's
// APIReader) and writing through writer.
func New(reader, live client.Reader, writer client.Client) *Backend {
	return &Backend{reader: reader, live: live, writer: writer, written: map[types.NamespacedName]*coordinationv1.Lease{}}
}

// ErrNotManaged is returned for a Lease that has a lock's name but not this
// operator's label: a Lease someone else made. The operator neither reads nor
// overwrites it; the lock's decisions fail, with backoff, until it is renamed or
// deleted.
var ErrNotManaged = errors.New("the Lease exists but is not managed by atlantis-lock-operator (no " + lockingv1alpha1.LockNameLabel + " label)")

// GetLatest implements orchestrator.Backend: it reads the Lease from the API server.
func (b *Backend) GetLatest(ctx context.Context, ref orchestrator.LockRef) (orchestrator.Record, error) {
	lease, err := b.getLive(ctx, ref)
	if err != nil || lease == nil {
		return orchestrator.Record{}, err
	}
	return toRecord(lease), nil
}

// Describe implements orchestrator.Backend.
func (b *Backend) Describe(ref orchestrator.LockRef) string {
	return "Lease " + ref.String()
}

// getLive reads the Lease from the API server, nil when there is none. A Lease
// without the operator's label is ErrNotManaged.
func (b *Backend) getLive(ctx context.Context, ref orchestrator.LockRef) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{}
	err := b.live.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, lease)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, Classify(err)
	}
	if _, ours := lease.Labels[lockingv1alpha1.LockNameLabel]; !ours {
		return nil, fmt.Errorf("lock %s: %w", ref, ErrNotManaged)
	}
	return lease, nil
}

// Get implements orchestrator.Backend.
func (b *Backend) Get(ctx context.Context, ref orchestrator.LockRef) (orchestrator.Record, error) {
	lease, err := b.get(ctx, ref)
	if err != nil || lease == nil {
		return orchestrator.Record{}, err
	}
	return toRecord(lease), nil
}

func (b *Backend) get(ctx context.Context, ref orchestrator.LockRef) (*coordinationv1.Lease, error) {
	nn := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	// The cache is read under the lock that Seen takes: Seen drops the copy of
	// our last write once the cache shows it, and between a read of the cache
	// from before that and a look at the copy after it, neither would have it.
	b.mu.Lock()
	lease := &coordinationv1.Lease{}
	err := b.reader.Get(ctx, nn, lease)
	switch {
	case apierrors.IsNotFound(err):
		lease = nil
	case err != nil:
		b.mu.Unlock()
		return nil, Classify(err)
	}
	mine := b.written[nn]
	switch {
	case mine != nil && lease != nil && Newer(mine.ResourceVersion, lease.ResourceVersion):
		// The cache has not seen our last write yet.
		b.mu.Unlock()
		return mine.DeepCopy(), nil
	case mine != nil && lease != nil:
		// The cache caught up; forget our copy.
		delete(b.written, nn)
	case mine != nil:
		// The cache has no Lease: either it has not seen the one we created yet,
		// or the Lease was deleted since (by hand, with its namespace). Only the
		// API server can tell; taking our copy for it would hide a lost Lease.
		b.mu.Unlock()
		return b.resolveMissing(ctx, ref, nn)
	}
	b.mu.Unlock()
	return lease, nil
}

// resolveMissing reads a Lease that the cache lacks but this backend wrote, from
// the API server, and forgets its own copy: the API server's answer is at least as
// new.
func (b *Backend) resolveMissing(ctx context.Context, ref orchestrator.LockRef, nn types.NamespacedName) (*coordinationv1.Lease, error) {
	live, err := b.getLive(ctx, ref)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if mine := b.written[nn]; mine != nil && (live == nil || !Newer(mine.ResourceVersion, live.ResourceVersion)) {
		delete(b.written, nn)
	}
	return live, nil
}

// Newer reports whether resourceVersion a is later than b. Both are decimal integers
// on Kubernetes 1.35 and later; anything else is treated as not newer, which only
// costs a conflict and a retry.
func Newer(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x > y
}

// Write implements orchestrator.Backend.
func (b *Backend) Write(ctx context.Context, ref orchestrator.LockRef, rec orchestrator.Record) (string, error) {
	lease := &coordinationv1.Lease{}
	if rec.Version != "" {
		current, err := b.get(ctx, ref)
		if err != nil {
			return "", err
		}
		if current == nil || current.ResourceVersion != rec.Version {
			return "", orchestrator.ErrConflict
		}
		lease = current
	} else {
		lease.Namespace, lease.Name = ref.Namespace, ref.Name
	}
	fill(lease, ref, rec)

	var err error
	if rec.Version == "" {
		err = b.writer.Create(ctx, lease, client.FieldOwner(lockingv1alpha1.FieldManager))
	} else {
		// Update sends lease.ResourceVersion: the API server refuses it with 409 if
		// anyone wrote the Lease since it was read. This is the compare-and-swap.
		lease.ManagedFields = untrackedFields()
		err = b.writer.Update(ctx, lease, client.FieldOwner(lockingv1alpha1.FieldManager))
	}
	if err != nil {
		b.forget(ref)
		if apierrors.IsAlreadyExists(err) {
			// Made by another decision since the read, or a Lease of that name
			// that the cache does not select: only the second is not a race.
			if _, err := b.getLive(ctx, ref); err != nil {
				return "", err
			}
			return "", orchestrator.ErrConflict
		}
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return "", orchestrator.ErrConflict
		}
		return "", Classify(err)
	}
	b.remember(lease)
	return lease.ResourceVersion, nil
}

// untrackedFields is the managedFields value that clears a Lease's field ownership
// (a list of one empty entry, as the Kubernetes documentation on server-side apply
// describes). The API server tracks no field ownership for an update that resets
// it, nor for any update of an object that has none, so no compare-and-swap pays
// for that tracking: about a fifth of the API server's CPU for the write, and a
// quarter of a millisecond of its latency (docs/benchmarks.md, step 26). Only this
// operator writes its Leases and nobody applies to them, so the ownership told
// nobody anything; the create still records it, once per Lease.
func untrackedFields() []metav1.ManagedFieldsEntry {
	return []metav1.ManagedFieldsEntry{{}}
}

// Delete implements orchestrator.Backend.
func (b *Backend) Delete(ctx context.Context, ref orchestrator.LockRef, version string) error {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}
	err := b.writer.Delete(ctx, lease, client.Preconditions{ResourceVersion: &version})
	b.forget(ref)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		return orchestrator.ErrConflict
	}
	return Classify(err)
}

// Seen drops this backend's copy of its last write of lease once the cache shows
// that write or a later one: the copy only bridges the moment in which the cache
// is behind, and a key decided about no more would otherwise keep it. Give it
// every Lease the cache delivers.
func (b *Backend) Seen(lease client.Object) {
	nn := client.ObjectKeyFromObject(lease)
	b.mu.Lock()
	defer b.mu.Unlock()
	if mine := b.written[nn]; mine != nil && !Newer(mine.ResourceVersion, lease.GetResourceVersion()) {
		delete(b.written, nn)
	}
}

// remember keeps a copy of lease as written, unless the cache shows that write
// already (its watch event often comes before the write's response); asked under
// the lock Seen takes, so that a copy is never kept past the event that shows it.
func (b *Backend) remember(lease *coordinationv1.Lease) {
	nn := client.ObjectKeyFromObject(lease)
	b.mu.Lock()
	defer b.mu.Unlock()
	cached := &coordinationv1.Lease{}
	if err := b.reader.Get(context.Background(), nn, cached); err == nil && !Newer(lease.ResourceVersion, cached.ResourceVersion) {
		return
	}
	b.written[nn] = lease.DeepCopy()
}

func (b *Backend) forget(ref orchestrator.LockRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.written, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name})
}

// OnlyOwnLabels reports whether lease's labels are exactly the two that every
// write of this backend sets (the lock's name and ManagedByLabel): a cached copy
// may then go without them, since no write loses them (fill sets them again).
func OnlyOwnLabels(lease *coordinationv1.Lease) bool {
	l := lease.Labels
	return len(l) == 2 && l[lockingv1alpha1.LockNameLabel] == lease.Name && l[ManagedByLabel] == ManagedByValue
}

// fill writes rec into lease, keeping what others (labels, annotations) set. It
// sets the operator's own labels on every write, so a copy without them (see
// OnlyOwnLabels) is written whole.
func fill(lease *coordinationv1.Lease, ref orchestrator.LockRef, rec orchestrator.Record) {
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	lease.Labels[lockingv1alpha1.LockNameLabel] = ref.Name
	lease.Labels[ManagedByLabel] = ManagedByValue
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	setOrDelete(lease.Annotations, lockingv1alpha1.OwnerAnnotation, rec.Owner)
	setOrDelete(lease.Annotations, RevokedForAnnotation, rec.RevokedFor)
	if ref.Key.Repository != "" {
		lease.Annotations[KeyAnnotation] = ref.Key.String()
	}

	spec := &lease.Spec
	spec.HolderIdentity = nil
	spec.AcquireTime, spec.RenewTime, spec.LeaseDurationSeconds = nil, nil, nil
	if !rec.Free() {
		holder := rec.HolderID
		spec.HolderIdentity = &holder
		spec.AcquireTime = microTime(rec.AcquiredAt)
		spec.RenewTime = microTime(rec.RenewedAt)
		if rec.TTL > 0 {
			secs := int32((rec.TTL + time.Second - 1) / time.Second)
			spec.LeaseDurationSeconds = &secs
		}
	}
	transitions := rec.Transitions
	spec.LeaseTransitions = &transitions
}

func toRecord(lease *coordinationv1.Lease) orchestrator.Record {
	rec := orchestrator.Record{
		Owner:      lease.Annotations[lockingv1alpha1.OwnerAnnotation],
		RevokedFor: lease.Annotations[RevokedForAnnotation],
		Version:    lease.ResourceVersion,
	}
	spec := lease.Spec
	if spec.HolderIdentity != nil {
		rec.HolderID = *spec.HolderIdentity
	}
	if spec.AcquireTime != nil {
		rec.AcquiredAt = spec.AcquireTime.Time
	}
	if spec.RenewTime != nil {
		rec.RenewedAt = spec.RenewTime.Time
	}
	if spec.LeaseDurationSeconds != nil {
		rec.TTL = time.Duration(*spec.LeaseDurationSeconds) * time.Second
	}
	if spec.LeaseTransitions != nil {
		rec.Transitions = *spec.LeaseTransitions
	}
	return rec
}

func microTime(t time.Time) *metav1.MicroTime {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewMicroTime(t)
	return &m
}

func setOrDelete(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
		return
	}
	m[k] = v
}
