package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

const examplePath = "../../docs/examples/enhanced-locking.yaml"

// exampleConfig is what docs/examples/enhanced-locking.yaml says.
func exampleConfig() Config {
	c := Default()
	c.DefaultQueueTimeout = 30 * time.Minute
	c.DefaultTTL = 6 * time.Hour
	c.MaxQueueLength = 100
	c.AuditLog = "/var/log/atlantis-lock-operator/audit.jsonl"
	c.Webhooks = []Webhook{
		{
			URL:        "https://hooks.example.com/atlantis-locks",
			Events:     []string{"lock_acquired", "lock_released", "deadlock_detected"},
			SecretFile: "/etc/atlantis-lock-operator/webhook-secret",
			Timeout:    5 * time.Second,
			MaxRetries: 3,
			QueueSize:  100,
		},
		{
			URL:        "http://alerts.monitoring.svc:8080/hook",
			SecretEnv:  "ALERTS_WEBHOOK_SECRET",
			Timeout:    5 * time.Second,
			MaxRetries: 3,
			QueueSize:  100,
		},
	}
	return c
}

// fullYAML sets every key to a value other than its default.
const fullYAML = `
enhanced_locking:
  enabled: false
  backend: memory
  enable_events: true
  event_buffer_size: 50
  collection_interval: 1m
  retention_period: 1h30m
  worker_count: 2
  request_buffer_size: 10
  health_check_interval: 15s
  component_timeout: 2s
  default_queue_timeout: 0s
  default_ttl: 2h
  max_queue_length: 0
  deadlock_check_interval: 500ms
  breaker_failure_threshold: 2
  breaker_open_timeout: 250ms
  breaker_max_open_timeout: 4s
  leader_release_after: 0s
  project_lock_delay: 250ms
  idle_lease_retention: 0s
  status_update_interval: 300ms
  audit_log: "-"
  audit_log_max_size_mb: 0
  audit_log_max_files: 2
  webhooks:
    - url: https://example.com/hook?team=infra
      events: [lock_timeout, queue_timeout]
      secret_env: HOOK_SECRET
      timeout: 1s
      max_retries: 0
      queue_size: 7
`

func fullConfig() Config {
	return Config{
		Enabled:               false,
		Backend:               BackendMemory,
		EnableEvents:          true,
		EventBufferSize:       50,
		CollectionInterval:    time.Minute,
		RetentionPeriod:       90 * time.Minute,
		WorkerCount:           2,
		RequestBufferSize:     10,
		HealthCheckInterval:   15 * time.Second,
		ComponentTimeout:      2 * time.Second,
		DefaultQueueTimeout:   0,
		DefaultTTL:            2 * time.Hour,
		MaxQueueLength:        0,
		DeadlockCheckInterval: 500 * time.Millisecond,

		BreakerFailureThreshold: 2,
		BreakerOpenTimeout:      250 * time.Millisecond,
		BreakerMaxOpenTimeout:   4 * time.Second,
		LeaderReleaseAfter:      0,
		ProjectLockDelay:        250 * time.Millisecond,
		IdleLeaseRetention:      0,
		StatusUpdateInterval:    300 * time.Millisecond,
		AuditLog:                "-",
		AuditLogMaxSizeMB:       0,
		AuditLogMaxFiles:        2,
		Webhooks: []Webhook{{
			URL:        "https://example.com/hook?team=infra",
			Events:     []string{"lock_timeout", "queue_timeout"},
			SecretEnv:  "HOOK_SECRET",
			Timeout:    time.Second,
			MaxRetries: 0,
			QueueSize:  7,
		}},
	}
}

func TestDefault(t *testing.T) {
	want := Config{
		Enabled:               true,
		Backend:               "kubernetes",
		EnableEvents:          true,
		EventBufferSize:       1000,
		CollectionInterval:    30 * time.Second,
		RetentionPeriod:       24 * time.Hour,
		WorkerCount:           8,
		RequestBufferSize:     1000,
		HealthCheckInterval:   30 * time.Second,
		ComponentTimeout:      5 * time.Second,
		DefaultQueueTimeout:   orchestrator.NoQueueTimeout,
		DefaultTTL:            0,
		MaxQueueLength:        1000,
		DeadlockCheckInterval: 10 * time.Second,

		BreakerFailureThreshold: 5,
		BreakerOpenTimeout:      time.Second,
		BreakerMaxOpenTimeout:   30 * time.Second,
		LeaderReleaseAfter:      time.Minute,
		ProjectLockDelay:        time.Second,
		IdleLeaseRetention:      time.Second,
		StatusUpdateInterval:    time.Second,
		AuditLogMaxSizeMB:       100,
		AuditLogMaxFiles:        5,
	}
	got := Default()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	if diff := cmp.Diff(orchestrator.DefaultConfig(), got.Orchestrator()); diff != "" {
		t.Errorf("Default().Orchestrator() differs from orchestrator.DefaultConfig() (-want +got):\n%s", diff)
	}
}

func TestOrchestrator(t *testing.T) {
	want := orchestrator.Config{
		DefaultQueueTimeout:   0,
		DefaultTTL:            2 * time.Hour,
		MaxQueueLength:        0,
		DeadlockCheckInterval: 500 * time.Millisecond,
		WaiterUpdateDelay:     300 * time.Millisecond,
		GrantStatusDelay:      300 * time.Millisecond,
	}
	if diff := cmp.Diff(want, fullConfig().Orchestrator()); diff != "" {
		t.Errorf("Orchestrator() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseValid(t *testing.T) {
	with := func(f func(*Config)) Config {
		c := Default()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		yaml string
		want Config
	}{
		{"empty file", "", Default()},
		{"only comments", "# nothing here\n\n", Default()},
		{"empty map", "{}", Default()},
		{"null enhanced_locking", "enhanced_locking:\n", Default()},
		{"empty enhanced_locking", "enhanced_locking: {}\n", Default()},
		{"full", fullYAML, fullConfig()},
		{"null values keep defaults", "enhanced_locking:\n  worker_count:\n  backend: null\n  webhooks:\n", Default()},
		{"partial", "enhanced_locking:\n  worker_count: 16\n  backend: \"memory\"\n",
			with(func(c *Config) { c.WorkerCount = 16; c.Backend = BackendMemory })},
		{"empty queue timeout waits without limit", "enhanced_locking:\n  default_queue_timeout: \"\"\n",
			with(func(c *Config) { c.DefaultQueueTimeout = orchestrator.NoQueueTimeout })},
		{"zero queue timeout fails fast", "enhanced_locking:\n  default_queue_timeout: 0s\n",
			with(func(c *Config) { c.DefaultQueueTimeout = 0 })},
		{"empty ttl never expires", "enhanced_locking:\n  default_ttl: \"\"\n", Default()},
		{"zero ttl never expires", "enhanced_locking:\n  default_ttl: 0s\n", Default()},
		{"max_queue_length zero is unbounded", "enhanced_locking:\n  max_queue_length: 0\n",
			with(func(c *Config) { c.MaxQueueLength = 0 })},
		{"audit log off", "enhanced_locking:\n  audit_log: \"\"\n", Default()},
		{"events off without consumers", "enhanced_locking:\n  enable_events: false\n",
			with(func(c *Config) { c.EnableEvents = false })},
		{"webhook defaults, empty events = all", "enhanced_locking:\n  webhooks:\n  - url: http://h/x\n    events: []\n",
			with(func(c *Config) {
				c.Webhooks = []Webhook{{URL: "http://h/x", Timeout: 5 * time.Second, MaxRetries: 3, QueueSize: 100}}
			})},
		{"webhook url with user but no password", "enhanced_locking:\n  webhooks:\n  - url: https://bot@h/x\n",
			with(func(c *Config) {
				c.Webhooks = []Webhook{{URL: "https://bot@h/x", Timeout: 5 * time.Second, MaxRetries: 3, QueueSize: 100}}
			})},
		{"JSON is YAML", `{"enhanced_locking": {"worker_count": 3, "default_ttl": "1h"}}`,
			with(func(c *Config) { c.WorkerCount = 3; c.DefaultTTL = time.Hour })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// fieldErrors flattens the FieldErrors of a (joined, wrapped) error.
func fieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok { //nolint:errorlint // walks the wrapping tree itself
			out = append(out, fe)
			return
		}
		switch u := err.(type) { //nolint:errorlint // walks the wrapping tree itself
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func TestParseInvalid(t *testing.T) {
	el := func(body string) string { return "enhanced_locking:\n" + body }
	hook := func(body string) string { return el("  webhooks:\n  - url: https://h/x\n" + body) }
	tests := []struct {
		name    string
		yaml    string
		wantKey string // the key the error must name
		want    string // substring of the whole message
	}{
		// Unknown keys, at each level.
		{"unknown top-level key", "enhanced_locking: {}\nbogus: 1\n", "bogus", "bogus: unknown key"},
		{"misspelt top-level key", "enhanced_lock:\n  worker_count: 1\n", "enhanced_lock", `did you mean "enhanced_locking"?`},
		{"unknown key in enhanced_locking", el("  bogus: 1\n"), "enhanced_locking.bogus", "enhanced_locking.bogus: unknown key"},
		{"misspelt key in enhanced_locking", el("  worker_cnt: 1\n"), "enhanced_locking.worker_cnt", `did you mean "worker_count"?`},
		{"camelCase key in enhanced_locking", el("  workerCount: 1\n"), "enhanced_locking.workerCount", `did you mean "worker_count"?`},
		{"unknown key in webhook", hook("    retries: 1\n"), "enhanced_locking.webhooks[0].retries", "enhanced_locking.webhooks[0].retries: unknown key"},
		{"inline secret refused", hook("    secret: hunter2\n"), "enhanced_locking.webhooks[0].secret", "unknown key; secrets are never written in this file: give secret_file"},
		{"inline token refused", hook("    token: hunter2\n"), "enhanced_locking.webhooks[0].token", "secret_env"},
		// Shapes.
		{"top level a list", "- a\n", "top level", "must be a map with the key enhanced_locking"},
		{"enhanced_locking a string", "enhanced_locking: yes please\n", "enhanced_locking", "must be a map of settings"},
		{"webhooks a map", el("  webhooks: {url: http://h}\n"), "enhanced_locking.webhooks", "must be a list of webhooks"},
		{"webhook a string", el("  webhooks: [http://h]\n"), "enhanced_locking.webhooks[0]", "must be a map with at least url"},
		{"events a string", hook("    events: lock_acquired\n"), "enhanced_locking.webhooks[0].events", "must be a list of event type names"},
		// Types.
		{"bool as string", el("  enabled: \"true\"\n"), "enhanced_locking.enabled", `must be true or false, got the string "true"`},
		{"int as string", el("  worker_count: \"8\"\n"), "enhanced_locking.worker_count", "must be a whole number"},
		{"int with fraction", el("  worker_count: 1.5\n"), "enhanced_locking.worker_count", "must be a whole number"},
		{"backend as number", el("  backend: 1\n"), "enhanced_locking.backend", "must be a string"},
		// Durations.
		{"bad duration", el("  collection_interval: soon\n"), "enhanced_locking.collection_interval", `"soon" is not a duration (examples: "30s"`},
		{"duration without unit", el("  collection_interval: \"30\"\n"), "enhanced_locking.collection_interval", `"30" is not a duration`},
		{"numeric duration", el("  collection_interval: 30\n"), "enhanced_locking.collection_interval", `must be a duration string with a unit, such as "30s"`},
		{"numeric queue timeout", el("  default_queue_timeout: 0\n"), "enhanced_locking.default_queue_timeout", "got the number 0"},
		{"numeric webhook timeout", hook("    timeout: 5\n"), "enhanced_locking.webhooks[0].timeout", `such as "5s"`},
		{"negative duration", el("  retention_period: -1h\n"), "enhanced_locking.retention_period", "must not be negative, got -1h"},
		{"negative queue timeout", el("  default_queue_timeout: -1s\n"), "enhanced_locking.default_queue_timeout", "must not be negative"},
		{"negative ttl", el("  default_ttl: -5m\n"), "enhanced_locking.default_ttl", "must not be negative"},
		{"zero interval", el("  deadlock_check_interval: 0s\n"), "enhanced_locking.deadlock_check_interval", "must be greater than 0, got 0s"},
		{"zero breaker threshold", el("  breaker_failure_threshold: 0\n"), "enhanced_locking.breaker_failure_threshold", "must be greater than 0, got 0"},
		{"breaker pause longer than its bound", el("  breaker_open_timeout: 1m\n  breaker_max_open_timeout: 10s\n"), "enhanced_locking.breaker_max_open_timeout", "must be at least breaker_open_timeout (1m0s), got 10s"},
		{"negative leader release", el("  leader_release_after: -1s\n"), "enhanced_locking.leader_release_after", "must not be negative, got -1s"},
		{"negative project lock delay", el("  project_lock_delay: -1s\n"), "enhanced_locking.project_lock_delay", "must not be negative, got -1s"},
		{"negative idle lease retention", el("  idle_lease_retention: -1s\n"), "enhanced_locking.idle_lease_retention", "must not be negative, got -1s"},
		{"negative status update interval", el("  status_update_interval: -1s\n"), "enhanced_locking.status_update_interval", "must not be negative, got -1s"},
		{"empty interval", el("  health_check_interval: \"\"\n"), "enhanced_locking.health_check_interval", `"" is not a duration`},
		{"zero webhook timeout", hook("    timeout: 0s\n"), "enhanced_locking.webhooks[0].timeout", "must be greater than 0"},
		{"retention shorter than collection", el("  collection_interval: 1m\n  retention_period: 30s\n"), "enhanced_locking.retention_period", "must be at least collection_interval (1m0s), got 30s"},
		// Sizes.
		{"negative event buffer", el("  event_buffer_size: -1\n"), "enhanced_locking.event_buffer_size", "enhanced_locking.event_buffer_size: must be greater than 0, got -1"},
		{"zero event buffer", el("  event_buffer_size: 0\n"), "enhanced_locking.event_buffer_size", "must be greater than 0, got 0"},
		{"huge event buffer", el("  event_buffer_size: 1000000000\n"), "enhanced_locking.event_buffer_size", "must be at most 1000000"},
		{"zero worker_count", el("  worker_count: 0\n"), "enhanced_locking.worker_count", "enhanced_locking.worker_count: must be greater than 0, got 0"},
		{"negative request buffer", el("  request_buffer_size: -3\n"), "enhanced_locking.request_buffer_size", "must be greater than 0, got -3"},
		{"negative max_queue_length", el("  max_queue_length: -1\n"), "enhanced_locking.max_queue_length", "must not be negative, got -1"},
		{"negative max_retries", hook("    max_retries: -1\n"), "enhanced_locking.webhooks[0].max_retries", "must not be negative, got -1"},
		{"zero queue_size", hook("    queue_size: 0\n"), "enhanced_locking.webhooks[0].queue_size", "must be greater than 0, got 0"},
		{"int overflow", el("  worker_count: 99999999999999999999\n"), "enhanced_locking.worker_count", "must be a whole number"},
		// Values.
		{"bad backend", el("  backend: redis\n"), "enhanced_locking.backend", `enhanced_locking.backend: must be "kubernetes" or "memory", got "redis"`},
		{"unparseable webhook url", el("  webhooks:\n  - url: \"::bad\"\n"), "enhanced_locking.webhooks[0].url", `enhanced_locking.webhooks[0].url: "::bad" is not an absolute http(s) URL`},
		{"relative webhook url", el("  webhooks:\n  - url: /hooks/locks\n"), "enhanced_locking.webhooks[0].url", `"/hooks/locks" is not an absolute http(s) URL`},
		{"non-http webhook url", el("  webhooks:\n  - url: ftp://h/x\n"), "enhanced_locking.webhooks[0].url", "is not an absolute http(s) URL"},
		{"webhook url without host", el("  webhooks:\n  - url: \"https:///x\"\n"), "enhanced_locking.webhooks[0].url", "is not an absolute http(s) URL"},
		{"missing webhook url", el("  webhooks:\n  - events: [lock_acquired]\n"), "enhanced_locking.webhooks[0].url", "is required"},
		{"password in webhook url", el("  webhooks:\n  - url: https://u:p@h/x\n"), "enhanced_locking.webhooks[0].url", "must not contain a password"},
		{"unknown event type", hook("    events: [lock_acquired, lock_aquired]\n"), "enhanced_locking.webhooks[0].events[1]", `unknown event type "lock_aquired" (did you mean "lock_acquired"?)`},
		{"event type not a string", hook("    events: [1]\n"), "enhanced_locking.webhooks[0].events[0]", "must be an event type name"},
		{"both secrets", hook("    secret_file: /s\n    secret_env: S\n"), "enhanced_locking.webhooks[0]", "secret_file and secret_env are both set"},
		{"bad env name", hook("    secret_env: 1-SECRET\n"), "enhanced_locking.webhooks[0].secret_env", "is not an environment variable name"},
		{"second webhook named", el("  webhooks:\n  - url: https://h/x\n  - url: nope\n"), "enhanced_locking.webhooks[1].url", `"nope" is not an absolute http(s) URL`},
		{"webhooks without events", el("  enable_events: false\n  webhooks:\n  - url: https://h/x\n"), "enhanced_locking.webhooks", "enable_events is false"},
		{"audit log without events", el("  enable_events: false\n  audit_log: \"-\"\n"), "enhanced_locking.audit_log", "enable_events is false"},
		// YAML itself.
		{"duplicate key", el("  worker_count: 1\n  worker_count: 2\n"), "", "not valid YAML"},
		{"broken YAML", "enhanced_locking: [\n", "", "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse() = %+v, want an error", got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() error =\n%v\nwant it to contain %q", err, tt.want)
			}
			if diff := cmp.Diff(Config{}, got); diff != "" {
				t.Errorf("Parse() returned a config with its error:\n%s", diff)
			}
			if tt.wantKey == "" {
				return
			}
			var keys []string
			for _, fe := range fieldErrors(err) {
				keys = append(keys, fe.Key)
				if fe.Key == tt.wantKey {
					return
				}
			}
			t.Errorf("Parse() error names keys %q, want %q; error:\n%v", keys, tt.wantKey, err)
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("enhanced_locking:\n  worker_count: 0\n  backend: redis\n  bogus: 1\n  collection_interval: 30\n"))
	var keys []string
	for _, fe := range fieldErrors(err) {
		keys = append(keys, fe.Key)
	}
	want := []string{
		"enhanced_locking.bogus",
		"enhanced_locking.collection_interval",
		"enhanced_locking.backend",
		"enhanced_locking.worker_count",
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys named (-want +got):\n%s\nerror:\n%v", diff, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "enhanced_locking.bogus" {
		t.Errorf("errors.As found %+v, want the first FieldError", fe)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no queue timeout", func(c *Config) { c.DefaultQueueTimeout = orchestrator.NoQueueTimeout }, ""},
		{"negative queue timeout other than NoQueueTimeout", func(c *Config) { c.DefaultQueueTimeout = -2 * time.Second },
			"enhanced_locking.default_queue_timeout: must not be negative"},
		{"negative ttl", func(c *Config) { c.DefaultTTL = -time.Second }, "enhanced_locking.default_ttl: must not be negative"},
		{"empty backend", func(c *Config) { c.Backend = "" }, `enhanced_locking.backend: must be "kubernetes" or "memory", got ""`},
		{"too many workers", func(c *Config) { c.WorkerCount = MaxWorkerCount + 1 }, "enhanced_locking.worker_count: must be at most 1000"},
		{"zero component timeout", func(c *Config) { c.ComponentTimeout = 0 }, "enhanced_locking.component_timeout: must be greater than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	got, err := Load(writeFile(t, fullYAML))
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if diff := cmp.Diff(fullConfig(), got); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}

	got, err = Load(writeFile(t, ""))
	if err != nil {
		t.Fatalf("Load(empty file) error = %v", err)
	}
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("Load(empty file) mismatch (-want +got):\n%s", diff)
	}

	p := writeFile(t, "enhanced_locking:\n  event_buffer_size: -1\n")
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "enhanced_locking.event_buffer_size: must be greater than 0, got -1") {
		t.Errorf("Load(invalid) error = %v, want the path and the key", err)
	}

	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want one wrapping os.ErrNotExist", err)
	}
}

// TestExample keeps docs/examples/enhanced-locking.yaml loadable and its meaning
// pinned.
func TestExample(t *testing.T) {
	got, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s) error = %v", examplePath, err)
	}
	if diff := cmp.Diff(exampleConfig(), got); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", examplePath, diff)
	}
}

// TestDocs keeps docs/configuration.md complete: every key, every flag, and the
// example file verbatim.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(example)) {
		t.Errorf("docs/configuration.md does not contain %s verbatim", examplePath)
	}
	for _, k := range append(append([]string{"enhanced_locking"}, enhancedKeys...), webhookKeys...) {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not document key `%s`", k)
		}
	}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	BindFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(doc), "`--"+f.Name) {
			t.Errorf("docs/configuration.md does not document flag --%s", f.Name)
		}
	})
	for _, e := range EventTypes() {
		if !strings.Contains(string(doc), "`"+e+"`") {
			t.Errorf("docs/configuration.md does not list event type `%s`", e)
		}
	}
}

func TestFlags(t *testing.T) {
	fileYAML := `
enhanced_locking:
  worker_count: 4
  backend: memory
  default_queue_timeout: 10m
  default_ttl: 1h
  max_queue_length: 5
  deadlock_check_interval: 20s
  event_buffer_size: 10
  audit_log: /var/log/audit.jsonl
`
	fromFile, err := Parse([]byte(fileYAML))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want func(*Config)
	}{
		{"no flags keep the file", nil, func(*Config) {}},
		{"every flag beats the file", []string{
			"--default-queue-timeout=2m", "--default-ttl=0s", "--max-queue-length=0",
			"--deadlock-check-interval=1s", "--worker-count=32", "--backend=kubernetes",
			"--event-buffer-size=5000", "--audit-log=-",
		}, func(c *Config) {
			c.DefaultQueueTimeout = 2 * time.Minute
			c.DefaultTTL = 0
			c.MaxQueueLength = 0
			c.DeadlockCheckInterval = time.Second
			c.WorkerCount = 32
			c.Backend = BackendKubernetes
			c.EventBufferSize = 5000
			c.AuditLog = "-"
		}},
		{"empty queue timeout waits without limit", []string{"--default-queue-timeout="},
			func(c *Config) { c.DefaultQueueTimeout = orchestrator.NoQueueTimeout }},
		{"zero queue timeout", []string{"-default-queue-timeout", "0s"},
			func(c *Config) { c.DefaultQueueTimeout = 0 }},
		{"empty audit log turns it off", []string{"--audit-log="},
			func(c *Config) { c.AuditLog = "" }},
		{"a flag set to the built-in default still beats the file", []string{"--worker-count=8"},
			func(c *Config) { c.WorkerCount = 8 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			ov := BindFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.args, err)
			}
			got := fromFile
			got.Webhooks = nil
			ov.Apply(&got)
			want := fromFile
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after Apply (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestFlagsRejectBadValues(t *testing.T) {
	tests := []struct {
		arg  string
		want string
	}{
		{"--backend=redis", `invalid value "redis" for flag -backend: must be "kubernetes" or "memory"`},
		{"--worker-count=0", "must be greater than 0"},
		{"--worker-count=many", `"many" is not a whole number`},
		{"--event-buffer-size=-1", "must be greater than 0"},
		{"--max-queue-length=-1", "must not be negative"},
		{"--default-ttl=-1s", "must not be negative"},
		{"--default-queue-timeout=-1s", "must not be negative"},
		{"--deadlock-check-interval=10", `"10" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			BindFlags(fs)
			err := fs.Parse([]string{tt.arg})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%s) error = %v, want one containing %q", tt.arg, err, tt.want)
			}
		})
	}
}

func TestFlagsValidatedAfterApply(t *testing.T) {
	// A flag value the flag package accepts can still be invalid overall;
	// Validate names the key the flag overrides.
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	ov := BindFlags(fs)
	if err := fs.Parse([]string{"--deadlock-check-interval=0s"}); err != nil {
		t.Fatal(err)
	}
	c := Default()
	ov.Apply(&c)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "enhanced_locking.deadlock_check_interval: must be greater than 0") {
		t.Errorf("Validate() = %v", err)
	}
}

func TestHelp(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	BindFlags(fs)
	fs.PrintDefaults()
	for _, want := range []string{
		"Overrides enhanced_locking.default_queue_timeout.",
		`(default "")`,
		"Overrides enhanced_locking.worker_count. (default 8)",
		"Overrides enhanced_locking.audit_log.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not contain %q:\n%s", want, out.String())
		}
	}
}

func TestWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONFIG_TEST_SECRET", "from-env")
	tests := []struct {
		name    string
		w       Webhook
		want    []byte
		wantErr string
	}{
		{"none", Webhook{}, nil, ""},
		{"file", Webhook{SecretFile: file}, []byte("s3cret"), ""},
		{"env", Webhook{SecretEnv: "CONFIG_TEST_SECRET"}, []byte("from-env"), ""},
		{"missing file", Webhook{SecretFile: filepath.Join(dir, "nope")}, nil, "reading secret_file"},
		{"empty file", Webhook{SecretFile: empty}, nil, "is empty"},
		{"unset env", Webhook{SecretEnv: "CONFIG_TEST_UNSET_SECRET"}, nil, "CONFIG_TEST_UNSET_SECRET (secret_env) is unset or empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.w.Secret()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Secret() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Secret() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Secret() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventTypes(t *testing.T) {
	want := []string{
		"lock_requested", "lock_acquired", "lock_released", "lock_timeout",
		"queued_request", "queue_processed", "queue_timeout", "deadlock_detected",
		"system_health_check", "metrics_updated", "backend_error", "timeout_error",
		"validation_error",
	}
	got := EventTypes()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EventTypes() mismatch (-want +got):\n%s", diff)
	}
	got[0] = "changed"
	if EventTypes()[0] != "lock_requested" {
		t.Error("EventTypes() returned the package's own slice")
	}
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"",
		"{}",
		"enhanced_locking:\n",
		fullYAML,
		string(example),
		"enhanced_locking:\n  default_queue_timeout: \"\"\n  default_ttl: \"\"\n",
		"enhanced_locking:\n  webhooks:\n  - url: http://h/x\n    events: []\n",
		`{"enhanced_locking": {"worker_count": 3}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned a config that fails Validate: %v", data, err)
		}
	})
}
