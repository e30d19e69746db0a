package orchestrator

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// ErrConflict is returned by a Backend write whose expected version is no longer
// current: someone else changed the record first. Read it again and decide again.
var ErrConflict = errors.New("lock record changed since it was read")

// ErrTimeout marks a backend error that is a timeout (the API server answered
// "timeout", or the call's deadline passed). A Backend wraps such errors with it, so
// that the orchestrator can report them as timeout errors rather than failures.
var ErrTimeout = errors.New("backend call timed out")

// IsTimeout reports whether err is a timeout: wrapped with ErrTimeout, or a
// context deadline.
func IsTimeout(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// LockRef names a lock: its namespace, its object name (of the ProjectLock and Lease)
// and its key.
type LockRef struct {
	// Namespace of the lock's objects.
	Namespace string
	// Name of the lock's objects, lockkey.Key.ObjectName().
	Name string
	// Key is the lock key.
	Key lockkey.Key
}

// String returns "namespace/name".
func (r LockRef) String() string { return r.Namespace + "/" + r.Name }

// id is the lock's identity in the orchestrator's maps: its namespace and name.
// A Sync may know a lock by name only (its requests and ProjectLock gone, its
// record kept), and must find the same state as one that knew its key.
func (r LockRef) id() lockID { return lockID{Namespace: r.Namespace, Name: r.Name} }

// lockID keys the orchestrator's per-lock maps: a third of a LockRef's size, which
// counts with a map entry per busy key (docs/benchmarks.md, "Scale").
type lockID struct {
	Namespace, Name string
}

// Backend stores one lock record per key and changes it only by compare-and-swap:
// that is what makes a grant exclusive, whoever else decides at the same time.
type Backend interface {
	// Get returns the key's record; a record that does not exist is returned as the
	// zero Record (Version "").
	Get(ctx context.Context, ref LockRef) (Record, error)
	// GetLatest returns the key's record as the store holds it now, past any
	// cache. The orchestrator asks for it before it ends a hold that the record
	// from Get no longer backs, so that a cache behind the store never ends a hold
	// that stands.
	GetLatest(ctx context.Context, ref LockRef) (Record, error)
	// Describe names the key's record for people ("Lease ns/name"), in the
	// messages of the decisions about it.
	Describe(ref LockRef) string
	// Write stores rec if the stored version is still rec.Version ("" = the record
	// must not exist yet) and returns the new version, the fencing token of any grant
	// it makes. It returns ErrConflict when the version is no longer current.
	Write(ctx context.Context, ref LockRef, rec Record) (string, error)
	// Delete removes the record if its version is still version. A record already
	// gone is no error; a changed one is ErrConflict.
	Delete(ctx context.Context, ref LockRef, version string) error
}

// MemoryBackend keeps lock records in memory, for unit tests, benchmarks and the Go
// API without Kubernetes. Versions come from one counter, so like resourceVersions
// they grow across all keys and survive deletion and re-creation of a record.
type MemoryBackend struct {
	mu       sync.Mutex
	revision uint64
	records  map[lockID]Record
	// FailWrites, when set, makes every Write and Delete fail with it (tests of
	// backend errors).
	FailWrites error
}

var _ Backend = (*MemoryBackend)(nil)

// NewMemoryBackend returns an empty MemoryBackend.
func NewMemoryBackend() *MemoryBackend {
	return &MemoryBackend{records: map[lockID]Record{}}
}

// Get implements Backend.
func (b *MemoryBackend) Get(_ context.Context, ref LockRef) (Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records[ref.id()], nil
}

// GetLatest implements Backend: the memory is the store, so it is Get.
func (b *MemoryBackend) GetLatest(ctx context.Context, ref LockRef) (Record, error) {
	return b.Get(ctx, ref)
}

// Describe implements Backend.
func (b *MemoryBackend) Describe(ref LockRef) string {
	return "in-memory lock record " + ref.String()
}

// Write implements Backend.
func (b *MemoryBackend) Write(_ context.Context, ref LockRef, rec Record) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.FailWrites != nil {
		return "", b.FailWrites
	}
	if b.records[ref.id()].Version != rec.Version {
		return "", ErrConflict
	}
	b.revision++
	rec.Version = strconv.FormatUint(b.revision, 10)
	b.records[ref.id()] = rec
	return rec.Version, nil
}

// Delete implements Backend.
func (b *MemoryBackend) Delete(_ context.Context, ref LockRef, version string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.FailWrites != nil {
		return b.FailWrites
	}
	cur, ok := b.records[ref.id()]
	if !ok {
		return nil
	}
	if cur.Version != version {
		return ErrConflict
	}
	delete(b.records, ref.id())
	return nil
}
