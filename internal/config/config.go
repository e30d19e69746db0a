// Package config loads the operator's configuration: the original design's
// `enhanced_locking:` YAML file (given with --config), plus command-line flags that
// override single keys.
//
// Loading is strict. An unknown key anywhere, a value of the wrong type or a value
// out of range stops loading with an error that names the key, such as
//
//	enhanced_locking.event_buffer_size: must be greater than 0, got -1
//
// Typical use:
//
//	ov := config.BindFlags(flag.CommandLine)
//	flag.Parse()
//	cfg, err := config.Load(path) // or config.Default() without --config
//	...
//	ov.Apply(&cfg)
//	if err := cfg.Validate(); err != nil { ... }
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/runatlantis/atlantis-lock-operator/internal/breaker"
	"github.com/runatlantis/atlantis-lock-operator/internal/events"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// Backend names accepted by the backend key.
const (
	// BackendKubernetes keeps every lock in a coordination.k8s.io/v1 Lease.
	BackendKubernetes = "kubernetes"
	// BackendMemory keeps locks in the operator's memory only; they are lost when
	// it stops. For tests, benchmarks and trying things out.
	BackendMemory = "memory"
)

// Upper bounds on sizes that become allocations (channel buffers, goroutines), so
// that a typo cannot make the operator allocate gigabytes at start.
const (
	// MaxBufferSize bounds event_buffer_size, request_buffer_size and a webhook's
	// queue_size.
	MaxBufferSize = 1_000_000
	// MaxWorkerCount bounds worker_count.
	MaxWorkerCount = 1000
	// MaxAuditSizeMB bounds audit_log_max_size_mb (1 TiB).
	MaxAuditSizeMB = 1 << 20
	// MaxAuditFiles bounds audit_log_max_files.
	MaxAuditFiles = 1000
)

// DefaultProjectLockDelay is project_lock_delay's default: long enough that an
// uncontended lock cycle (tens of milliseconds) writes no ProjectLock, short enough
// that a person running `kubectl get projectlocks` never waits for one.
const DefaultProjectLockDelay = time.Second

// Webhook defaults.
const (
	DefaultWebhookTimeout    = 5 * time.Second
	DefaultWebhookMaxRetries = 3
	DefaultWebhookQueueSize  = 100
)

// Config is the operator's configuration: the keys of the enhanced_locking map.
type Config struct {
	// Enabled is the original design's master switch for enhanced locking
	// (enabled, default true).
	Enabled bool
	// Backend is where locks are stored: BackendKubernetes (Leases, the default)
	// or BackendMemory (backend).
	Backend string

	// EnableEvents turns the event bus on: Kubernetes Events, structured event
	// logs, webhooks and the audit log all hang off it (enable_events, default
	// true).
	EnableEvents bool
	// EventBufferSize is how many events the bus buffers per subscriber before it
	// drops (and counts) new ones (event_buffer_size, default 1000).
	EventBufferSize int

	// CollectionInterval is how often the metrics collector takes a snapshot
	// (collection_interval, default 30s).
	CollectionInterval time.Duration
	// RetentionPeriod is how long the metrics collector keeps samples for its
	// percentiles (retention_period, default 24h).
	RetentionPeriod time.Duration

	// WorkerCount is how many lock keys are reconciled concurrently
	// (worker_count, default 8).
	WorkerCount int
	// RequestBufferSize is how many lock keys woken outside watch events (the
	// deadlock detector's victims) may wait for a worker; when that many wait, the
	// detector waits before it wakes more (request_buffer_size, default 1000).
	RequestBufferSize int

	// HealthCheckInterval is how often component health is checked and a
	// system_health_check event emitted (health_check_interval, default 30s).
	HealthCheckInterval time.Duration
	// ComponentTimeout is how long one component health check may take before the
	// component counts as unhealthy (component_timeout, default 5s).
	ComponentTimeout time.Duration

	// DefaultQueueTimeout applies to lock requests that set no queue timeout of
	// their own: how long they may wait in the queue. orchestrator.NoQueueTimeout
	// (the default, YAML "" or absent) waits without limit; 0 fails at once when
	// the lock is held (default_queue_timeout).
	DefaultQueueTimeout time.Duration
	// DefaultTTL applies to lock requests that set no ttl of their own: how long a
	// grant lasts without renewal. 0, the default, never expires (default_ttl).
	DefaultTTL time.Duration
	// MaxQueueLength is how many requests may wait for one lock key; further ones
	// fail with QueueFull. 0 is unbounded (max_queue_length, default 1000).
	MaxQueueLength int
	// DeadlockCheckInterval is how often the deadlock detector scans the
	// wait-for graph (deadlock_check_interval, default 10s).
	DeadlockCheckInterval time.Duration

	// BreakerFailureThreshold is how many lock-decision API calls in a row may fail
	// (timeout, unavailable, server error, throttled) before the circuit opens and
	// decisions pause (breaker_failure_threshold, default 5).
	BreakerFailureThreshold int
	// BreakerOpenTimeout is how long decisions first pause once the circuit opens;
	// each failed probe doubles it (breaker_open_timeout, default 1s).
	BreakerOpenTimeout time.Duration
	// BreakerMaxOpenTimeout bounds that pause (breaker_max_open_timeout, default 30s).
	BreakerMaxOpenTimeout time.Duration
	// LeaderReleaseAfter is how long the leader's circuit may stay open before it
	// gives up leadership (and exits, to restart as a standby) so that another
	// replica decides; 0 never gives up (leader_release_after, default 1m).
	LeaderReleaseAfter time.Duration
	// IdleLeaseRetention is how long the Lease of a key whose holder let go, with
	// nobody waiting, is kept before it is deleted; a request in that time is
	// granted with one Lease write instead of a delete and a create. The key's
	// ProjectLock, if any, is kept as long, showing the key free. 0 deletes both
	// with the release (idle_lease_retention, default 1s).
	IdleLeaseRetention time.Duration
	// ProjectLockDelay is how long a key may be held, or waited for, before its
	// ProjectLock is created; 0 creates it with the first grant or waiter
	// (project_lock_delay, default 1s). Holds and waits shorter than this cost no
	// ProjectLock writes.
	ProjectLockDelay time.Duration
	// StatusUpdateInterval is the least time between two writes of what only
	// people read: a waiter's position and blocker (counted from when it joined
	// the queue) and a ProjectLock's status; the latest state is written when
	// the interval is over, or never when a newer one supersedes it first. It is
	// also how long the grant of a request whose client learns of it from the
	// Lease (lockingv1alpha1.GrantNoticeAnnotation, set by pkg/lockclient) goes
	// without its Acquired status: a hold that ends sooner costs no status write;
	// and how long a wait of a request whose client needs no word while it waits
	// (GrantNoticeLeaseOnly: pkg/lockclient's blocking Lock) goes without its first
	// Queued status. Other grants, ends and the first Queued status of other
	// waiters are written at once.
	// 0 writes every change at once (status_update_interval, default 1s).
	StatusUpdateInterval time.Duration

	// AuditLog is where the audit trail (one JSON line per event) is written: a
	// file path, "-" for standard output, or "" (the default) for no audit trail
	// (audit_log).
	AuditLog string
	// AuditLogMaxSizeMB is the size in MiB at which a file audit trail rotates; 0
	// never rotates (audit_log_max_size_mb, default 100).
	AuditLogMaxSizeMB int
	// AuditLogMaxFiles is how many rotated audit files are kept besides the
	// current one (audit_log_max_files, default 5).
	AuditLogMaxFiles int

	// Webhooks receive events as JSON POSTs (webhooks, default none).
	Webhooks []Webhook
}

// Webhook is one entry of the webhooks list.
type Webhook struct {
	// URL is the absolute http or https URL events are POSTed to (url, required).
	URL string
	// Events are the event type names sent to this webhook; empty sends all
	// (events).
	Events []string
	// SecretFile is the path of a file whose content (without trailing newline)
	// is the HMAC-SHA256 signing key (secret_file). At most one of SecretFile and
	// SecretEnv is set; with neither, deliveries are not signed.
	SecretFile string
	// SecretEnv is the name of an environment variable holding the signing key
	// (secret_env).
	SecretEnv string
	// Timeout bounds one delivery attempt (timeout, default 5s).
	Timeout time.Duration
	// MaxRetries is how many times a failed delivery is retried, with backoff
	// (max_retries, default 3).
	MaxRetries int
	// QueueSize is how many events may wait for delivery to this webhook before
	// new ones are dropped and counted (queue_size, default 100).
	QueueSize int
}

// Secret returns the webhook's signing key, read from SecretFile or SecretEnv,
// or nil when neither is set. A file's trailing newline is dropped. An unreadable
// file, an unset variable or an empty key is an error.
func (w Webhook) Secret() ([]byte, error) {
	switch {
	case w.SecretFile != "":
		b, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: reading secret_file: %w", w.URL, err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("webhook %s: secret_file %s is empty", w.URL, w.SecretFile)
		}
		return b, nil
	case w.SecretEnv != "":
		v, ok := os.LookupEnv(w.SecretEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("webhook %s: environment variable %s (secret_env) is unset or empty", w.URL, w.SecretEnv)
		}
		return []byte(v), nil
	}
	return nil, nil
}

// EventTypes returns the event type names a webhook's events list may contain,
// exactly as the original design names them.
func EventTypes() []string { return slices.Clone(eventTypes) }

var eventTypes = []string{
	"lock_requested", "lock_acquired", "lock_released", "lock_timeout",
	"queued_request", "queue_processed", "queue_timeout", "deadlock_detected",
	"system_health_check", "metrics_updated", "backend_error", "timeout_error",
	"validation_error",
}

// Keys of the file, in documentation order.
var (
	enhancedKeys = []string{
		"enabled", "backend", "enable_events", "event_buffer_size",
		"collection_interval", "retention_period", "worker_count",
		"request_buffer_size", "health_check_interval", "component_timeout",
		"default_queue_timeout", "default_ttl", "max_queue_length",
		"deadlock_check_interval", "breaker_failure_threshold", "breaker_open_timeout",
		"breaker_max_open_timeout", "leader_release_after", "project_lock_delay", "idle_lease_retention", "status_update_interval", "audit_log", "audit_log_max_size_mb",
		"audit_log_max_files", "webhooks",
	}
	webhookKeys = []string{"url", "events", "secret_file", "secret_env", "timeout", "max_retries", "queue_size"}
)

// Default returns the configuration used when no file is given.
func Default() Config {
	o := orchestrator.DefaultConfig()
	return Config{
		Enabled:               true,
		Backend:               BackendKubernetes,
		EnableEvents:          true,
		EventBufferSize:       1000,
		CollectionInterval:    30 * time.Second,
		RetentionPeriod:       24 * time.Hour,
		WorkerCount:           8,
		RequestBufferSize:     1000,
		HealthCheckInterval:   30 * time.Second,
		ComponentTimeout:      5 * time.Second,
		DefaultQueueTimeout:   o.DefaultQueueTimeout,
		DefaultTTL:            o.DefaultTTL,
		MaxQueueLength:        o.MaxQueueLength,
		DeadlockCheckInterval: o.DeadlockCheckInterval,

		BreakerFailureThreshold: 5,
		BreakerOpenTimeout:      time.Second,
		BreakerMaxOpenTimeout:   30 * time.Second,
		LeaderReleaseAfter:      time.Minute,
		ProjectLockDelay:        DefaultProjectLockDelay,
		IdleLeaseRetention:      o.IdleRecordGrace,
		StatusUpdateInterval:    o.WaiterUpdateDelay,
		AuditLogMaxSizeMB:       100,
		AuditLogMaxFiles:        5,
	}
}

// Audit returns how a file audit trail rotates.
func (c Config) Audit() events.AuditOptions {
	return events.AuditOptions{MaxSize: int64(c.AuditLogMaxSizeMB) << 20, MaxFiles: c.AuditLogMaxFiles}
}

// Breaker returns the circuit breaker's configuration.
func (c Config) Breaker() breaker.Config {
	return breaker.Config{FailureThreshold: c.BreakerFailureThreshold, OpenTimeout: c.BreakerOpenTimeout,
		MaxOpenTimeout: c.BreakerMaxOpenTimeout}
}

func defaultWebhook() Webhook {
	return Webhook{
		Timeout:    DefaultWebhookTimeout,
		MaxRetries: DefaultWebhookMaxRetries,
		QueueSize:  DefaultWebhookQueueSize,
	}
}

// Orchestrator returns the orchestrator's part of the configuration.
func (c Config) Orchestrator() orchestrator.Config {
	return orchestrator.Config{
		DefaultQueueTimeout:   c.DefaultQueueTimeout,
		DefaultTTL:            c.DefaultTTL,
		MaxQueueLength:        c.MaxQueueLength,
		DeadlockCheckInterval: c.DeadlockCheckInterval,
		IdleRecordGrace:       c.IdleLeaseRetention,
		WaiterUpdateDelay:     c.StatusUpdateInterval,
		GrantStatusDelay:      c.StatusUpdateInterval,
	}
}

// FieldError is one problem with one key. Load, Parse and Validate return one
// FieldError, or several joined with errors.Join; errors.As finds the first.
type FieldError struct {
	// Key is the key's full path, such as "enhanced_locking.webhooks[0].url".
	Key string
	// Message says what is wrong and, where it helps, what would be right.
	Message string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Message }

type errList []error

func (l *errList) add(key, format string, args ...any) {
	*l = append(*l, &FieldError{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (l errList) err() error { return errors.Join(l...) }

// Load reads the YAML file at path: the defaults, overridden by the file.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config file: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a configuration from YAML: the defaults, overridden by the keys
// present. Empty input, a null top level and null values mean the defaults. The
// result is validated; on error Parse returns the zero Config.
func Parse(data []byte) (Config, error) {
	c := Default()
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return Config{}, fmt.Errorf("not valid YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return Config{}, fmt.Errorf("not valid YAML: %w", err)
	}
	var errs errList
	switch t := top.(type) {
	case nil:
	case map[string]any:
		for _, k := range sortedKeys(t) {
			if k != "enhanced_locking" {
				errs.add(k, "unknown key%s (the file has one top-level key, enhanced_locking)", suggest(k, []string{"enhanced_locking"}))
				continue
			}
			switch el := t[k].(type) {
			case nil:
			case map[string]any:
				decodeEnhanced(el, &c, &errs)
			default:
				errs.add(k, "must be a map of settings, got %s", describe(el))
			}
		}
	default:
		errs.add("top level", "must be a map with the key enhanced_locking, got %s", describe(t))
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			return Config{}, err
		}
		return c, nil
	}
	// Report what Validate finds too: keys that failed to decode kept their
	// (valid) defaults, so nothing is reported twice.
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return Config{}, errs.err()
}

func decodeEnhanced(m map[string]any, c *Config, errs *errList) {
	for _, k := range sortedKeys(m) {
		v, key := m[k], "enhanced_locking."+k
		if v == nil {
			continue
		}
		switch k {
		case "enabled":
			decodeBool(key, v, &c.Enabled, errs)
		case "backend":
			decodeString(key, v, &c.Backend, errs)
		case "enable_events":
			decodeBool(key, v, &c.EnableEvents, errs)
		case "event_buffer_size":
			decodeInt(key, v, &c.EventBufferSize, errs)
		case "collection_interval":
			decodeDuration(key, v, &c.CollectionInterval, false, errs)
		case "retention_period":
			decodeDuration(key, v, &c.RetentionPeriod, false, errs)
		case "worker_count":
			decodeInt(key, v, &c.WorkerCount, errs)
		case "request_buffer_size":
			decodeInt(key, v, &c.RequestBufferSize, errs)
		case "health_check_interval":
			decodeDuration(key, v, &c.HealthCheckInterval, false, errs)
		case "component_timeout":
			decodeDuration(key, v, &c.ComponentTimeout, false, errs)
		case "default_queue_timeout":
			if s, ok := v.(string); ok && s == "" {
				c.DefaultQueueTimeout = orchestrator.NoQueueTimeout
				continue
			}
			decodeDuration(key, v, &c.DefaultQueueTimeout, false, errs)
		case "default_ttl":
			decodeDuration(key, v, &c.DefaultTTL, true, errs)
		case "max_queue_length":
			decodeInt(key, v, &c.MaxQueueLength, errs)
		case "deadlock_check_interval":
			decodeDuration(key, v, &c.DeadlockCheckInterval, false, errs)
		case "breaker_failure_threshold":
			decodeInt(key, v, &c.BreakerFailureThreshold, errs)
		case "breaker_open_timeout":
			decodeDuration(key, v, &c.BreakerOpenTimeout, false, errs)
		case "breaker_max_open_timeout":
			decodeDuration(key, v, &c.BreakerMaxOpenTimeout, false, errs)
		case "leader_release_after":
			decodeDuration(key, v, &c.LeaderReleaseAfter, true, errs)
		case "project_lock_delay":
			decodeDuration(key, v, &c.ProjectLockDelay, true, errs)
		case "idle_lease_retention":
			decodeDuration(key, v, &c.IdleLeaseRetention, true, errs)
		case "status_update_interval":
			decodeDuration(key, v, &c.StatusUpdateInterval, true, errs)
		case "audit_log":
			decodeString(key, v, &c.AuditLog, errs)
		case "audit_log_max_size_mb":
			decodeInt(key, v, &c.AuditLogMaxSizeMB, errs)
		case "audit_log_max_files":
			decodeInt(key, v, &c.AuditLogMaxFiles, errs)
		case "webhooks":
			list, ok := v.([]any)
			if !ok {
				errs.add(key, "must be a list of webhooks (each a map with at least url), got %s", describe(v))
				continue
			}
			c.Webhooks = nil
			for i, item := range list {
				c.Webhooks = append(c.Webhooks, decodeWebhook(fmt.Sprintf("%s[%d]", key, i), item, errs))
			}
		default:
			errs.add(key, "unknown key%s", suggest(k, enhancedKeys))
		}
	}
}

func decodeWebhook(key string, v any, errs *errList) Webhook {
	w := defaultWebhook()
	m, ok := v.(map[string]any)
	if !ok {
		errs.add(key, "must be a map with at least url, got %s", describe(v))
		return w
	}
	for _, k := range sortedKeys(m) {
		v, key := m[k], key+"."+k
		if v == nil {
			continue
		}
		switch k {
		case "url":
			decodeString(key, v, &w.URL, errs)
		case "events":
			list, ok := v.([]any)
			if !ok {
				errs.add(key, "must be a list of event type names, got %s", describe(v))
				continue
			}
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					errs.add(fmt.Sprintf("%s[%d]", key, i), "must be an event type name, got %s", describe(e))
					continue
				}
				w.Events = append(w.Events, s)
			}
		case "secret_file":
			decodeString(key, v, &w.SecretFile, errs)
		case "secret_env":
			decodeString(key, v, &w.SecretEnv, errs)
		case "timeout":
			decodeDuration(key, v, &w.Timeout, false, errs)
		case "max_retries":
			decodeInt(key, v, &w.MaxRetries, errs)
		case "queue_size":
			decodeInt(key, v, &w.QueueSize, errs)
		default:
			hint := suggest(k, webhookKeys)
			lk := strings.ToLower(k)
			if hint == "" && (strings.Contains(lk, "secret") || strings.Contains(lk, "token") || strings.Contains(lk, "password") || strings.Contains(lk, "key")) {
				errs.add(key, "unknown key; secrets are never written in this file: give secret_file (the path of a file holding the secret) or secret_env (the name of an environment variable holding it)")
				continue
			}
			errs.add(key, "unknown key%s", hint)
		}
	}
	return w
}

func decodeBool(key string, v any, dst *bool, errs *errList) {
	b, ok := v.(bool)
	if !ok {
		errs.add(key, "must be true or false, got %s", describe(v))
		return
	}
	*dst = b
}

func decodeString(key string, v any, dst *string, errs *errList) {
	s, ok := v.(string)
	if !ok {
		errs.add(key, "must be a string, got %s", describe(v))
		return
	}
	*dst = s
}

func decodeInt(key string, v any, dst *int, errs *errList) {
	n, ok := v.(json.Number)
	if !ok {
		errs.add(key, "must be a whole number, got %s", describe(v))
		return
	}
	i, err := n.Int64()
	if err != nil || i > math.MaxInt || i < math.MinInt {
		errs.add(key, "must be a whole number within range, got %s", n)
		return
	}
	*dst = int(i)
}

// decodeDuration reads a duration string. emptyIsZero lets "" mean 0.
func decodeDuration(key string, v any, dst *time.Duration, emptyIsZero bool, errs *errList) {
	switch t := v.(type) {
	case json.Number:
		errs.add(key, "must be a duration string with a unit, such as \"%ss\" or \"10m\", got the number %s", t, t)
	case string:
		if t == "" && emptyIsZero {
			*dst = 0
			return
		}
		d, err := time.ParseDuration(t)
		if err != nil {
			errs.add(key, "%q is not a duration (examples: \"30s\", \"10m\", \"1h30m\")", t)
			return
		}
		if d < 0 {
			errs.add(key, "must not be negative, got %s", t)
			return
		}
		*dst = d
	default:
		errs.add(key, "must be a duration string such as \"30s\", \"10m\" or \"1h30m\", got %s", describe(v))
	}
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("the boolean %t", t)
	case json.Number:
		return "the number " + t.String()
	case string:
		return fmt.Sprintf("the string %q", t)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest returns ` (did you mean "x"?)` when k is close to one of known.
func suggest(k string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", math.MaxInt
	for _, c := range known {
		if norm(c) == norm(k) {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
		if d := levenshtein(k, c); d <= max(2, len(c)/5) && d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks every value and reports each problem under its YAML key.
func (c Config) Validate() error {
	var errs errList
	const p = "enhanced_locking."
	if c.Backend != BackendKubernetes && c.Backend != BackendMemory {
		errs.add(p+"backend", "must be %q or %q, got %q", BackendKubernetes, BackendMemory, c.Backend)
	}
	sizes := []struct {
		key      string
		v, lo, h int
	}{
		{"event_buffer_size", c.EventBufferSize, 1, MaxBufferSize},
		{"worker_count", c.WorkerCount, 1, MaxWorkerCount},
		{"request_buffer_size", c.RequestBufferSize, 1, MaxBufferSize},
		{"max_queue_length", c.MaxQueueLength, 0, math.MaxInt},
		{"breaker_failure_threshold", c.BreakerFailureThreshold, 1, MaxBufferSize},
		{"audit_log_max_size_mb", c.AuditLogMaxSizeMB, 0, MaxAuditSizeMB},
		{"audit_log_max_files", c.AuditLogMaxFiles, 1, MaxAuditFiles},
	}
	for _, s := range sizes {
		checkInt(&errs, p+s.key, s.v, s.lo, s.h)
	}
	positive := []struct {
		key string
		v   time.Duration
	}{
		{"collection_interval", c.CollectionInterval},
		{"retention_period", c.RetentionPeriod},
		{"health_check_interval", c.HealthCheckInterval},
		{"component_timeout", c.ComponentTimeout},
		{"deadlock_check_interval", c.DeadlockCheckInterval},
		{"breaker_open_timeout", c.BreakerOpenTimeout},
		{"breaker_max_open_timeout", c.BreakerMaxOpenTimeout},
	}
	for _, d := range positive {
		checkPositive(&errs, p+d.key, d.v)
	}
	if c.BreakerOpenTimeout > 0 && c.BreakerMaxOpenTimeout > 0 && c.BreakerMaxOpenTimeout < c.BreakerOpenTimeout {
		errs.add(p+"breaker_max_open_timeout", "must be at least breaker_open_timeout (%s), got %s", c.BreakerOpenTimeout, c.BreakerMaxOpenTimeout)
	}
	if c.LeaderReleaseAfter < 0 {
		errs.add(p+"leader_release_after", "must not be negative (0 means never), got %s", c.LeaderReleaseAfter)
	}
	if c.ProjectLockDelay < 0 {
		errs.add(p+"project_lock_delay", "must not be negative (0 means with the first grant), got %s", c.ProjectLockDelay)
	}
	if c.IdleLeaseRetention < 0 {
		errs.add(p+"idle_lease_retention", "must not be negative (0 means deleted with the release), got %s", c.IdleLeaseRetention)
	}
	if c.StatusUpdateInterval < 0 {
		errs.add(p+"status_update_interval", "must not be negative (0 means every change at once), got %s", c.StatusUpdateInterval)
	}
	if c.CollectionInterval > 0 && c.RetentionPeriod > 0 && c.RetentionPeriod < c.CollectionInterval {
		errs.add(p+"retention_period", "must be at least collection_interval (%s), got %s", c.CollectionInterval, c.RetentionPeriod)
	}
	if c.DefaultQueueTimeout < 0 && c.DefaultQueueTimeout != orchestrator.NoQueueTimeout {
		errs.add(p+"default_queue_timeout", "must not be negative (use \"\" to wait without limit), got %s", c.DefaultQueueTimeout)
	}
	if c.DefaultTTL < 0 {
		errs.add(p+"default_ttl", "must not be negative (0 means no expiry), got %s", c.DefaultTTL)
	}
	if !c.EnableEvents {
		if c.AuditLog != "" {
			errs.add(p+"audit_log", "is set (%q) but enable_events is false; the audit trail is written from events", c.AuditLog)
		}
		if len(c.Webhooks) > 0 {
			errs.add(p+"webhooks", "are configured but enable_events is false; webhooks receive events")
		}
	}
	for i, w := range c.Webhooks {
		w.validate(fmt.Sprintf("%swebhooks[%d]", p, i), &errs)
	}
	return errs.err()
}

func (w Webhook) validate(key string, errs *errList) {
	if w.URL == "" {
		errs.add(key+".url", "is required")
	} else if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.add(key+".url", "%q is not an absolute http(s) URL", w.URL)
	} else if _, hasPassword := u.User.Password(); hasPassword {
		errs.add(key+".url", "must not contain a password; give the secret with secret_file or secret_env")
	}
	for i, e := range w.Events {
		if !slices.Contains(eventTypes, e) {
			errs.add(fmt.Sprintf("%s.events[%d]", key, i), "unknown event type %q%s; known types: %s", e, suggest(e, eventTypes), strings.Join(eventTypes, ", "))
		}
	}
	if w.SecretFile != "" && w.SecretEnv != "" {
		errs.add(key, "secret_file and secret_env are both set; give one")
	}
	if w.SecretEnv != "" && !envName.MatchString(w.SecretEnv) {
		errs.add(key+".secret_env", "%q is not an environment variable name (letters, digits and _, not starting with a digit)", w.SecretEnv)
	}
	checkPositive(errs, key+".timeout", w.Timeout)
	checkInt(errs, key+".max_retries", w.MaxRetries, 0, math.MaxInt)
	checkInt(errs, key+".queue_size", w.QueueSize, 1, MaxBufferSize)
}

func checkInt(errs *errList, key string, v, lo, hi int) {
	switch {
	case v < lo && lo == 1:
		errs.add(key, "must be greater than 0, got %d", v)
	case v < lo:
		errs.add(key, "must not be negative, got %d", v)
	case v > hi:
		errs.add(key, "must be at most %d, got %d", hi, v)
	}
}

func checkPositive(errs *errList, key string, d time.Duration) {
	if d <= 0 {
		errs.add(key, "must be greater than 0, got %s", d)
	}
}
