package config

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Overrides holds the command-line flags that override single keys of the
// configuration file. Create it with BindFlags, parse the flag set, then Apply.
type Overrides struct {
	fs *flag.FlagSet

	defaultQueueTimeout   queueTimeoutValue
	defaultTTL            durationValue
	maxQueueLength        intValue
	deadlockCheckInterval durationValue
	workerCount           intValue
	backend               backendValue
	eventBufferSize       intValue
	auditLog              string
}

// Flag names registered by BindFlags.
const (
	FlagDefaultQueueTimeout   = "default-queue-timeout"
	FlagDefaultTTL            = "default-ttl"
	FlagMaxQueueLength        = "max-queue-length"
	FlagDeadlockCheckInterval = "deadlock-check-interval"
	FlagWorkerCount           = "worker-count"
	FlagBackend               = "backend"
	FlagEventBufferSize       = "event-buffer-size"
	FlagAuditLog              = "audit-log"
)

// BindFlags registers on fs one flag per overridable key. The flags' defaults
// shown in -help are the built-in defaults; a flag only takes effect when given
// on the command line, and then it beats the file.
func BindFlags(fs *flag.FlagSet) *Overrides {
	d := Default()
	o := &Overrides{
		fs:                    fs,
		defaultQueueTimeout:   queueTimeoutValue(d.DefaultQueueTimeout),
		defaultTTL:            durationValue(d.DefaultTTL),
		maxQueueLength:        intValue{v: d.MaxQueueLength, min: 0},
		deadlockCheckInterval: durationValue(d.DeadlockCheckInterval),
		workerCount:           intValue{v: d.WorkerCount, min: 1},
		backend:               backendValue(d.Backend),
		eventBufferSize:       intValue{v: d.EventBufferSize, min: 1},
		auditLog:              d.AuditLog,
	}
	fs.Var(&o.defaultQueueTimeout, FlagDefaultQueueTimeout,
		"How long (a `duration` such as 30m) a lock request that sets no queue timeout of its own may wait in the queue before it fails with QueueTimeout; \"\" waits without limit, 0s fails at once when the lock is held. Overrides enhanced_locking.default_queue_timeout.")
	fs.Var(&o.defaultTTL, FlagDefaultTTL,
		"How long (a `duration` such as 6h) a grant lasts without renewal when the lock request sets no ttl of its own; 0s never expires. Overrides enhanced_locking.default_ttl.")
	fs.Var(&o.maxQueueLength, FlagMaxQueueLength,
		"How many lock requests (an `int`) may wait for one lock; further ones fail with QueueFull. 0 is unbounded. Overrides enhanced_locking.max_queue_length.")
	fs.Var(&o.deadlockCheckInterval, FlagDeadlockCheckInterval,
		"How often (a `duration` greater than 0) the deadlock detector scans the wait-for graph. Overrides enhanced_locking.deadlock_check_interval.")
	fs.Var(&o.workerCount, FlagWorkerCount,
		"How many lock keys (an `int` greater than 0) are reconciled concurrently. Overrides enhanced_locking.worker_count.")
	fs.Var(&o.backend, FlagBackend,
		"Where locks are stored (`name`): \"kubernetes\" (Leases) or \"memory\" (lost when the operator stops; for tests). Overrides enhanced_locking.backend.")
	fs.Var(&o.eventBufferSize, FlagEventBufferSize,
		"How many events (an `int` greater than 0) are buffered per event subscriber before new ones are dropped and counted. Overrides enhanced_locking.event_buffer_size.")
	fs.StringVar(&o.auditLog, FlagAuditLog, d.AuditLog,
		"Where the audit trail (one JSON line per event) is written: a file `path`, \"-\" for standard output, \"\" for none. Overrides enhanced_locking.audit_log.")
	return o
}

// Apply copies into c the values of the flags given on the command line, and
// only those. Call it after the flag set is parsed, then call c.Validate.
func (o *Overrides) Apply(c *Config) {
	o.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case FlagDefaultQueueTimeout:
			c.DefaultQueueTimeout = time.Duration(o.defaultQueueTimeout)
		case FlagDefaultTTL:
			c.DefaultTTL = time.Duration(o.defaultTTL)
		case FlagMaxQueueLength:
			c.MaxQueueLength = o.maxQueueLength.v
		case FlagDeadlockCheckInterval:
			c.DeadlockCheckInterval = time.Duration(o.deadlockCheckInterval)
		case FlagWorkerCount:
			c.WorkerCount = o.workerCount.v
		case FlagBackend:
			c.Backend = string(o.backend)
		case FlagEventBufferSize:
			c.EventBufferSize = o.eventBufferSize.v
		case FlagAuditLog:
			c.AuditLog = o.auditLog
		}
	})
}

// durationValue is a non-negative duration flag.
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: 30s, 10m, 1h30m)", s)
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d = durationValue(v)
	return nil
}

// queueTimeoutValue is a non-negative duration flag where "" means no limit.
type queueTimeoutValue time.Duration

func (d *queueTimeoutValue) String() string {
	if time.Duration(*d) == orchestrator.NoQueueTimeout {
		return `""` // the empty string: no limit; shown by -help as (default "")
	}
	return time.Duration(*d).String()
}

func (d *queueTimeoutValue) Set(s string) error {
	if s == "" {
		*d = queueTimeoutValue(orchestrator.NoQueueTimeout)
		return nil
	}
	var v durationValue
	if err := v.Set(s); err != nil {
		return err
	}
	*d = queueTimeoutValue(v)
	return nil
}

// intValue is an int flag with a lower bound.
type intValue struct{ v, min int }

func (i *intValue) String() string { return strconv.Itoa(i.v) }

func (i *intValue) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	if v < i.min {
		if i.min == 1 {
			return errors.New("must be greater than 0")
		}
		return errors.New("must not be negative")
	}
	i.v = v
	return nil
}

// backendValue is the backend flag.
type backendValue string

func (b *backendValue) String() string { return string(*b) }

func (b *backendValue) Set(s string) error {
	if s != BackendKubernetes && s != BackendMemory {
		return fmt.Errorf("must be %q or %q", BackendKubernetes, BackendMemory)
	}
	*b = backendValue(s)
	return nil
}
