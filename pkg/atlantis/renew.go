package atlantis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// renewCheckInterval bounds the time between two looks at the holds to renew, so
// that holds taken by other Atlantis replicas, or given a ttl by the operator's
// default, are found without being announced.
const renewCheckInterval = 10 * time.Second

// RenewHolds keeps alive, until ctx ends, every hold in the Locker's namespace that
// Atlantis took through this package (the project locks of Locker, the global apply
// lock of ApplyLocker) and that expires unless renewed: a ttl set with WithTTL, or
// the operator's default_ttl. It renews each hold when a third of its ttl has passed
// since the operator last observed a grant or renewal, so that two renewals in a row
// can fail before the hold expires. Run it in a goroutine of its own beside
// Atlantis's server (docs/usage.md shows the line); any replica of Atlantis renews
// all of them, so a hold expires only when no Atlantis has run for its ttl.
//
// A renewal that fails is retried at the next look; WithRenewErrors sees every
// failure. Holds that ended (Expired, Revoked) are left alone: Atlantis learns it
// from the lock's absence. RenewHolds returns ctx's error when ctx ends.
func (l *Locker) RenewHolds(ctx context.Context) error {
	clk := timerClock(l.opts.clock)
	for {
		next := l.renewDue(ctx, clk.Now())
		wait := renewCheckInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(clk.Now()), 0))
		}
		timer := clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-l.granted:
			// A hold was just taken: its ttl may be the shortest now.
		case <-timer.C():
		}
		timer.Stop()
	}
}

// renewDue renews the holds whose renewal is due at now and returns when the next
// one is due (zero: none has a ttl).
func (l *Locker) renewDue(ctx context.Context, now time.Time) time.Time {
	infos, err := l.client.List(ctx)
	if err != nil {
		if ctx.Err() == nil { // not RenewHolds stopping
			l.renewFailed(fmt.Errorf("listing the holds to renew: %w", err))
		}
		return now.Add(renewCheckInterval)
	}
	var next time.Time
	for i := range infos {
		holder := infos[i].Holder
		if holder == nil {
			continue
		}
		due, ok := renewalDue(holder)
		if !ok {
			continue
		}
		if !due.After(now) {
			st, err := l.client.RenewName(ctx, holder.Name)
			var ended *lockclient.EndedError
			var notHeld *lockclient.NotHeldError
			switch {
			case errors.As(err, &ended), errors.As(err, &notHeld):
				continue
			case err != nil && ctx.Err() != nil:
				// RenewHolds is stopping: the renewal was cut short, not refused.
				return time.Time{}
			case err != nil:
				l.renewFailed(fmt.Errorf("renewing %s (LockRequest %s): %w", infos[i].Key, holder.Name, err))
				due = now.Add(time.Second)
			default:
				if due, ok = renewalDue(st.Request); !ok {
					continue
				}
			}
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// renewalDue says when a hold taken through this package should be renewed: a third
// of its ttl after the operator last observed its grant or renewal. It reports false
// for requests made elsewhere and for holds that do not expire.
func renewalDue(lr *lockingv1alpha1.LockRequest) (time.Time, bool) {
	if _, ours := lr.Annotations[LockAnnotation]; !ours {
		return time.Time{}, false
	}
	st := lr.Status
	if st.ExpiresTime == nil || st.AcquiredTime == nil {
		return time.Time{}, false
	}
	since := st.AcquiredTime.Time
	if st.ObservedRenewTime != nil && st.ObservedRenewTime.After(since) {
		since = st.ObservedRenewTime.Time
	}
	ttl := st.ExpiresTime.Sub(since)
	if lr.Spec.TTL != nil {
		ttl = lr.Spec.TTL.Duration
	}
	return since.Add(ttl / 3), true
}

func (l *Locker) renewFailed(err error) {
	if l.opts.onRenewError != nil {
		l.opts.onRenewError(err)
	}
}

// timerClock returns clk when it has timers, else the real clock: the options take
// a passive clock, which stamps times only.
func timerClock(clk clock.PassiveClock) clock.Clock {
	if c, ok := clk.(clock.Clock); ok {
		return c
	}
	return clock.RealClock{}
}
