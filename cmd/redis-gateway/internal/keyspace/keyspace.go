// Package keyspace maps the keys that Atlantis's Redis backend (server/core/redis
// in Atlantis v0.47.1) reads and writes onto the operator's objects, and is the
// resp.Backend of the gateway:
//
//   - "pr/<lock key>" are project locks: pkg/atlantis's Locker, over LockRequests.
//     GET answers the hold as Atlantis's models.ProjectLock JSON; SET of a free key
//     is a grant; SET of a key another owner holds is refused (resp.CodeLocked),
//     which closes the GET-then-SET race of Atlantis's RedisDB.TryLock; DEL
//     releases; the EVAL of Atlantis's unlock-if-owned-by-pull script releases
//     only that pull's hold.
//   - "global/apply/lock" is the global apply lock: pkg/atlantis's ApplyLocker.
//   - "<vcs host>::<repository>::<pull number>" are pull statuses: plain values in
//     Secrets (package kv).
//
// Any other key is refused with an error that says which shapes exist.
package keyspace

import (
	"context"
	"crypto/sha1" //nolint:gosec // SHA-1 is how Redis names scripts (EVALSHA, SCRIPT LOAD), not a security measure.
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runatlantis/atlantis/server/core/locking"
	"github.com/runatlantis/atlantis/server/events/command"
	"github.com/runatlantis/atlantis/server/events/models"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/resp"
	"github.com/runatlantis/atlantis-lock-operator/pkg/atlantis"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// Key prefixes and shapes that Atlantis v0.47.1's RedisDB writes.
const (
	// LockPrefix starts a project lock's key: "pr/" + models.GenerateLockKey.
	LockPrefix = "pr/"
	// ApplyLockKey is the global apply lock's key: "global/" + command.Apply + "/lock".
	ApplyLockKey = "global/apply/lock"
	// pullSeparator separates a pull status key's VCS host, repository and number.
	pullSeparator = "::"
)

// UnlockIfOwnedByPullScriptSHA1 is the SHA-1 of the Lua script that Atlantis
// v0.47.1's RedisDB.UnlockIfOwnedByPull sends with EVAL (KEYS[1] a lock key,
// ARGV[1] a pull number: delete the lock and return it only when that pull holds
// it). Redis names scripts by this digest; the gateway runs no Lua, so it knows
// this one script by its digest and does what it does, atomically, on the hold.
// A different script (another Atlantis version) is refused with its digest.
const UnlockIfOwnedByPullScriptSHA1 = "c09313c9247bdb6383a96b527fe8492ef19a1eeb"

// Space is the gateway's key space over one namespace.
type Space struct {
	client  *lockclient.Client
	store   *kv.Store
	fast    *Fast
	options []atlantis.Option
	locker  *atlantis.Locker
	apply   *atlantis.ApplyLocker
}

// New returns the key space of the locks of c (its namespace) and the plain keys of
// store. fast, when not nil, is the fast read path of lock keys (see read.go); nil
// reads every lock key with pkg/atlantis's full read. opts configure pkg/atlantis's
// Locker and ApplyLocker (call timeout); the lock times always come from the values
// Atlantis writes. The global apply lock's project is always
// atlantis.DefaultApplyLockProject, as Atlantis patched with pkg/atlantis uses it.
func New(c *lockclient.Client, store *kv.Store, fast *Fast, opts ...atlantis.Option) *Space {
	return &Space{
		client:  c,
		store:   store,
		fast:    fast,
		options: opts,
		locker:  atlantis.NewLocker(c, opts...),
		apply:   atlantis.NewApplyLocker(c, false, false, opts...),
	}
}

// kind is what a key stands for.
type kind int

const (
	lockKey kind = iota + 1
	applyKey
	pullKey
)

// classify returns what key stands for, or an error that names the shapes the
// gateway serves.
func classify(key string) (kind, error) {
	switch {
	case strings.HasPrefix(key, LockPrefix):
		if _, err := locking.IsCurrentLocking(strings.TrimPrefix(key, LockPrefix)); err != nil {
			return 0, resp.Errorf(resp.KindBadKey, "key '%s' is not a lock key of Atlantis v0.47.1, which writes pr/{repository}/{path}/{workspace}/{project name}", key)
		}
		return lockKey, nil
	case strings.HasPrefix(key, "global/") && strings.HasSuffix(key, "/lock"):
		if key != ApplyLockKey {
			return 0, resp.Errorf(resp.KindBadKey, "key '%s': Atlantis locks only the apply command globally (key %s)", key, ApplyLockKey)
		}
		return applyKey, nil
	}
	parts := strings.Split(key, pullSeparator)
	if len(parts) == 3 && parts[1] != "" && utf8.ValidString(key) {
		if _, err := strconv.Atoi(parts[2]); err == nil {
			return pullKey, nil
		}
	}
	return 0, resp.Errorf(resp.KindBadKey, "key '%s' is none of the keys Atlantis v0.47.1 writes: pr/{lock key}, %s, or {vcs host}::{repository}::{pull number}", key, ApplyLockKey)
}

// Get answers a key's value: the lock's models.ProjectLock JSON, the apply lock's
// command.Lock JSON, or a pull status's stored bytes.
func (s *Space) Get(ctx context.Context, key string) ([]byte, bool, error) {
	k, err := classify(key)
	if err != nil {
		return nil, false, err
	}
	switch k {
	case lockKey:
		lock, err := s.getLock(ctx, strings.TrimPrefix(key, LockPrefix))
		if err != nil || lock == nil {
			return nil, false, err
		}
		return marshal(lock)
	case applyKey:
		held, err := s.apply.CheckApplyLock()
		if err != nil || !held.Locked {
			return nil, false, err
		}
		return marshal(command.Lock{CommandName: command.Apply, LockMetadata: command.LockMetadata{UnixTime: held.Time.Unix()}})
	default:
		return s.store.Get(ctx, key)
	}
}

// marshal encodes a value as Atlantis's json.Marshal does.
func marshal(v any) ([]byte, bool, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("encoding %T: %w", v, err)
	}
	return data, true, nil
}

// Set writes a key. A lock key's value must be the models.ProjectLock of that key
// (as Atlantis's TryLock writes it), and the SET is a grant: refused when another
// owner holds the key, accepted (and left as it is) when the same owner does. The
// apply lock's value must be a command.Lock of command apply.
func (s *Space) Set(ctx context.Context, key string, value []byte) error {
	k, err := classify(key)
	if err != nil {
		return err
	}
	switch k {
	case lockKey:
		return s.setLock(ctx, key, value)
	case applyKey:
		return s.setApplyLock(value)
	default:
		return s.store.Set(ctx, key, value)
	}
}

func (s *Space) setLock(ctx context.Context, key string, value []byte) error {
	var lock models.ProjectLock
	if err := json.Unmarshal(value, &lock); err != nil {
		return resp.Errorf(resp.KindBadValue, "value of lock key '%s' is not the JSON of Atlantis's models.ProjectLock: %v", key, err)
	}
	if want := LockPrefix + models.GenerateLockKey(lock.Project, lock.Workspace); want != key {
		return resp.Errorf(resp.KindBadValue, "value of lock key '%s' is the lock of key '%s' (its project and workspace)", key, want)
	}
	// The lock's Time is Atlantis's, as it is in Redis: the Locker stamps new
	// locks with its clock, so give it a clock that reads that time.
	locker := atlantis.NewLocker(s.client, append(s.options[:len(s.options):len(s.options)], atlantis.WithClock(fixedClock(lock.Time)))...)
	try := locker.TryLock
	if s.fast != nil && s.fast.seenFree(ctx, strings.TrimPrefix(key, LockPrefix)) {
		// Atlantis's TryLock has just read the key free (its GET): ask the operator
		// without a second look at the key's holder.
		try = locker.TryLockSeenFree
	}
	got, err := try(lock.Project, lock.Workspace, lock.Pull, lock.User)
	if err != nil {
		return err
	}
	if got.LockAcquired || sameOwner(got.CurrLock, lock) {
		return nil
	}
	return resp.Locked("lock key '%s' is held by %s; not granted to %s", key, describe(got.CurrLock), describe(lock))
}

// sameOwner reports whether two locks of one key have the same owner, as the
// operator's LockRequests define it: the same pull number when there is a pull
// (the key fixes the repository), otherwise the same user.
func sameOwner(a, b models.ProjectLock) bool {
	if a.Pull.Num > 0 || b.Pull.Num > 0 {
		return a.Pull.Num == b.Pull.Num
	}
	return a.User.Username == b.User.Username
}

// describe names a lock's owner for an error.
func describe(l models.ProjectLock) string {
	who := "user " + l.User.Username
	if l.Pull.Num > 0 {
		who = fmt.Sprintf("pull #%d (%s) of %s", l.Pull.Num, l.User.Username, l.Project.RepoFullName)
	}
	if !l.Time.IsZero() {
		who += " since " + l.Time.UTC().Format(time.RFC3339)
	}
	return who
}

func (s *Space) setApplyLock(value []byte) error {
	var lock command.Lock
	if err := json.Unmarshal(value, &lock); err != nil {
		return resp.Errorf(resp.KindBadValue, "value of key '%s' is not the JSON of Atlantis's command.Lock: %v", ApplyLockKey, err)
	}
	if lock.CommandName != command.Apply {
		return resp.Errorf(resp.KindBadValue, "value of key '%s' is a lock of command %q, not apply", ApplyLockKey, lock.CommandName.String())
	}
	apply := atlantis.NewApplyLocker(s.client, false, false, append(s.options[:len(s.options):len(s.options)], atlantis.WithClock(fixedClock(lock.LockTime())))...)
	if _, err := apply.LockApply(); err != nil {
		if errors.Is(err, atlantis.ErrApplyLocked) {
			return resp.Locked("key '%s': %v", ApplyLockKey, err)
		}
		return err
	}
	return nil
}

// Del releases a lock (release.go) or the apply lock, or deletes a pull status.
func (s *Space) Del(ctx context.Context, key string) (bool, error) {
	k, err := classify(key)
	if err != nil {
		return false, err
	}
	switch k {
	case lockKey:
		text := strings.TrimPrefix(key, LockPrefix)
		lock, err := s.releaseLock(ctx, text, nil, func() (*models.ProjectLock, error) { return s.locker.Unlock(text) })
		return lock != nil, err
	case applyKey:
		err := s.apply.UnlockApply()
		if errors.Is(err, atlantis.ErrApplyNotLocked) {
			return false, nil
		}
		return err == nil, err
	default:
		return s.store.Del(ctx, key)
	}
}

// Keys returns, sorted, every key that pattern matches: the held locks, the apply
// lock when held, and the stored pull statuses. Only the parts that the pattern
// can match are read.
func (s *Space) Keys(ctx context.Context, pattern string) ([]string, error) {
	var keys []string
	if mayMatchPrefix(pattern, LockPrefix) {
		locks, err := s.locker.List()
		if err != nil {
			return nil, err
		}
		for k := range locks {
			keys = append(keys, LockPrefix+k)
		}
	}
	if Match(pattern, ApplyLockKey) {
		held, err := s.apply.CheckApplyLock()
		if err != nil {
			return nil, err
		}
		if held.Locked {
			keys = append(keys, ApplyLockKey)
		}
	}
	stored, err := s.store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	keys = append(keys, stored...)
	matched := keys[:0]
	for _, k := range keys {
		if Match(pattern, k) {
			matched = append(matched, k)
		}
	}
	sort.Strings(matched)
	return matched, nil
}

// mayMatchPrefix reports whether pattern may match some key that starts with
// prefix: the pattern's literal beginning (up to its first special character) and
// prefix must agree as far as both go.
func mayMatchPrefix(pattern, prefix string) bool {
	lit := pattern
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		lit = pattern[:i]
	}
	n := min(len(lit), len(prefix))
	return lit[:n] == prefix[:n]
}

// Eval runs Atlantis's unlock-if-owned-by-pull script (UnlockIfOwnedByPullScriptSHA1)
// on one lock key: when pull ARGV[1] holds the key, the hold is released and its
// lock returned; otherwise nothing changes and the answer is nil. The holder's own
// LockRequest is deleted by name and UID after its pull was checked (release.go),
// so a hold that changed hands in between is never released.
func (s *Space) Eval(ctx context.Context, script string, keys, args []string) ([]byte, bool, error) {
	sum := sha1.Sum([]byte(script)) //nolint:gosec // see the import
	if digest := hex.EncodeToString(sum[:]); digest != UnlockIfOwnedByPullScriptSHA1 {
		return nil, false, resp.Errorf(resp.KindUnknownCommand, "EVAL of script %s: this gateway runs no Lua, only Atlantis v0.47.1's unlock-if-owned-by-pull script (%s)", digest, UnlockIfOwnedByPullScriptSHA1)
	}
	if len(keys) != 1 || len(args) != 1 {
		return nil, false, resp.Errorf(resp.KindSyntax, "the unlock-if-owned-by-pull script takes 1 key and 1 argument, not %d and %d", len(keys), len(args))
	}
	k, err := classify(keys[0])
	if err != nil {
		return nil, false, err
	}
	if k != lockKey {
		return nil, false, resp.Errorf(resp.KindBadKey, "the unlock-if-owned-by-pull script runs on lock keys (%s...), not on '%s'", LockPrefix, keys[0])
	}
	pull, ok := luaNumber(args[0])
	if !ok {
		return nil, false, nil
	}
	text := strings.TrimPrefix(keys[0], LockPrefix)
	released, err := s.releaseLock(ctx, text, func(lock models.ProjectLock) bool { return lock.Pull.Num == pull }, func() (*models.ProjectLock, error) {
		lock, err := s.locker.GetLock(text)
		if err != nil || lock == nil {
			return nil, err
		}
		return s.locker.UnlockIfOwnedByPull(lock.Project, lock.Workspace, pull)
	})
	if err != nil || released == nil {
		return nil, false, err
	}
	return marshal(released)
}

// luaNumber reads a script argument as the script's Lua tonumber does for a pull
// number; an argument that is not a number matches no pull.
func luaNumber(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

// fixedClock is a clock that always reads one time: the time of the lock that
// Atlantis writes, for the Locker to stamp on it.
type fixedClock time.Time

// Now returns the time.
func (c fixedClock) Now() time.Time { return time.Time(c) }

// Since returns how long after the time t is.
func (c fixedClock) Since(t time.Time) time.Duration { return time.Time(c).Sub(t) }
