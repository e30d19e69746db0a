package chart

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// loadRenderedConfig finds the configuration file the Deployment passes with
// --config, follows its volume to the rendered ConfigMap, and loads it with
// config.Load, exactly as the manager does at start.
func loadRenderedConfig(t *testing.T, m manifest) (config.Config, *appsv1.Deployment) {
	t.Helper()
	d := deploymentOf(t, m)
	c := managerContainer(t, d)
	file, ok := argValue(c.Args, "config")
	if !ok {
		t.Fatalf("the manager has no --config flag: %v", c.Args)
	}
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if vm.MountPath == path.Dir(file) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly || mount.SubPath != "" {
		t.Fatalf("--config=%s: no read-only volume mounted at %s: %+v", file, path.Dir(file), c.VolumeMounts)
	}
	cmName := ""
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm := typed[corev1.ConfigMap](t, m.find("ConfigMap", releaseNamespace, cmName))
	data, ok := cm.Data[path.Base(file)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s for --config=%s", cmName, path.Base(file), file)
	}
	local := filepath.Join(t.TempDir(), path.Base(file))
	if err := os.WriteFile(local, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(local)
	if err != nil {
		t.Fatalf("the rendered configuration does not load: %v\n%s", err, data)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the rendered configuration is invalid: %v\n%s", err, data)
	}
	return cfg, d
}

// With default values the configuration is the operator's own defaults.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, _ := loadRenderedConfig(t, mustRender(t, ""))
	if diff := cmp.Diff(config.Default(), cfg); diff != "" {
		t.Errorf("default chart configuration differs from config.Default() (-want +got):\n%s", diff)
	}
}

// allKeysValues sets every key of enhanced_locking to something other than its
// default (but enable_events, which allKeysEventsOffValues turns off).
const allKeysValues = `
replicaCount: 1
config:
  enabled: false
  backend: memory
  enable_events: true
  event_buffer_size: 5000
  collection_interval: 15s
  retention_period: 12h
  worker_count: 16
  request_buffer_size: 200
  health_check_interval: 1m
  component_timeout: 2s
  default_queue_timeout: 0s
  default_ttl: 6h
  max_queue_length: 0
  deadlock_check_interval: 5s
  breaker_failure_threshold: 10
  breaker_open_timeout: 2s
  breaker_max_open_timeout: 1m
  leader_release_after: 5m
  project_lock_delay: 250ms
  idle_lease_retention: 2s
  status_update_interval: 500ms
  audit_log: /var/log/atlantis-lock-operator/audit.jsonl
  audit_log_max_size_mb: 10
  audit_log_max_files: 20
  webhooks:
  - url: https://hooks.example.com/atlantis-locks
    events: [lock_acquired, deadlock_detected]
    secretRef: {name: hooks, key: hmac}
    timeout: 3s
    max_retries: 5
    queue_size: 50
  - url: http://alerts.monitoring.svc:8080/hook
    secret_env: ALERTS_SECRET
extraEnv:
- name: ALERTS_SECRET
  valueFrom: {secretKeyRef: {name: alerts, key: token}}
`

const allKeysEventsOffValues = `
config:
  enable_events: false
  default_queue_timeout: ""
`

// Every key set in values reaches the operator, through its real loader.
func TestConfigAllKeys(t *testing.T) {
	t.Parallel()
	cfg, d := loadRenderedConfig(t, mustRender(t, allKeysValues))
	want := config.Config{
		Enabled:               false,
		Backend:               config.BackendMemory,
		EnableEvents:          true,
		EventBufferSize:       5000,
		CollectionInterval:    15 * time.Second,
		RetentionPeriod:       12 * time.Hour,
		WorkerCount:           16,
		RequestBufferSize:     200,
		HealthCheckInterval:   time.Minute,
		ComponentTimeout:      2 * time.Second,
		DefaultQueueTimeout:   0,
		DefaultTTL:            6 * time.Hour,
		MaxQueueLength:        0,
		DeadlockCheckInterval: 5 * time.Second,

		BreakerFailureThreshold: 10,
		BreakerOpenTimeout:      2 * time.Second,
		BreakerMaxOpenTimeout:   time.Minute,
		LeaderReleaseAfter:      5 * time.Minute,
		ProjectLockDelay:        250 * time.Millisecond,
		IdleLeaseRetention:      2 * time.Second,
		StatusUpdateInterval:    500 * time.Millisecond,
		AuditLog:                "/var/log/atlantis-lock-operator/audit.jsonl",
		AuditLogMaxSizeMB:       10,
		AuditLogMaxFiles:        20,
		Webhooks: []config.Webhook{
			{
				URL:        "https://hooks.example.com/atlantis-locks",
				Events:     []string{"lock_acquired", "deadlock_detected"},
				SecretFile: "/etc/atlantis-lock-operator/webhook-secrets/0/hmac",
				Timeout:    3 * time.Second,
				MaxRetries: 5,
				QueueSize:  50,
			},
			{
				URL:        "http://alerts.monitoring.svc:8080/hook",
				SecretEnv:  "ALERTS_SECRET",
				Timeout:    config.DefaultWebhookTimeout,
				MaxRetries: config.DefaultWebhookMaxRetries,
				QueueSize:  config.DefaultWebhookQueueSize,
			},
		},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("rendered configuration (-want +got):\n%s", diff)
	}

	off, _ := loadRenderedConfig(t, mustRender(t, allKeysEventsOffValues))
	if off.EnableEvents || off.DefaultQueueTimeout != orchestrator.NoQueueTimeout {
		t.Errorf("enable_events %t, default_queue_timeout %s; want false and no limit", off.EnableEvents, off.DefaultQueueTimeout)
	}

	// Every field of config.Config can be set from values: a new key in the loader
	// that the chart does not know fails here.
	def := reflect.ValueOf(config.Default())
	for i := range def.NumField() {
		name := def.Type().Field(i).Name
		if reflect.DeepEqual(def.Field(i).Interface(), reflect.ValueOf(cfg).Field(i).Interface()) &&
			reflect.DeepEqual(def.Field(i).Interface(), reflect.ValueOf(off).Field(i).Interface()) {
			t.Errorf("config.Config.%s keeps its default in both value sets: can the chart set it? (add it to values.yaml, values.schema.json and this test)", name)
		}
	}

	// The secretRef became a read-only Secret volume at the secret_file path, and the
	// secret never appears in the ConfigMap.
	c := managerContainer(t, d)
	secretFile := cfg.Webhooks[0].SecretFile
	found := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != path.Dir(secretFile) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil && v.Secret.SecretName == "hooks" && vm.ReadOnly &&
				len(v.Secret.Items) == 1 && v.Secret.Items[0].Key == "hmac" && v.Secret.Items[0].Path == path.Base(secretFile) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("secret_file %s is not key hmac of Secret hooks mounted read-only: mounts %+v", secretFile, c.VolumeMounts)
	}

	// The audit log directory is writable although the root filesystem is not.
	auditDir := path.Dir(cfg.AuditLog)
	found = false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == auditDir && !vm.ReadOnly {
			for _, v := range d.Spec.Template.Spec.Volumes {
				found = found || (v.Name == vm.Name && v.EmptyDir != nil)
			}
		}
	}
	if !found {
		t.Errorf("audit_log %s: no writable volume at %s: mounts %+v", cfg.AuditLog, auditDir, c.VolumeMounts)
	}
}

// A change of configuration rolls the pods, since the manager reads it only at start.
func TestConfigChecksumRollsPods(t *testing.T) {
	t.Parallel()
	a := deploymentOf(t, mustRender(t, "")).Spec.Template.Annotations["checksum/config"]
	b := deploymentOf(t, mustRender(t, "config: {worker_count: 4}")).Spec.Template.Annotations["checksum/config"]
	if a == "" || a == b {
		t.Errorf("checksum/config %q then %q: want a checksum that changes with the configuration", a, b)
	}
}

// Values the schema lets through but the loader refuses still fail before the pods
// start (here at load in the test); the schema catches what it can earlier.
func TestConfigSchemaAgreesWithLoader(t *testing.T) {
	t.Parallel()
	// The schema's duration pattern accepts what time.ParseDuration does.
	for _, d := range []string{"300ms", "1h30m", "1.5h", "10us"} {
		cfg, _ := loadRenderedConfig(t, mustRender(t, "config: {collection_interval: "+d+"}"))
		want, _ := time.ParseDuration(d)
		if cfg.CollectionInterval != want {
			t.Errorf("collection_interval %s loaded as %s", d, cfg.CollectionInterval)
		}
	}
	// Event names the loader knows are the schema's, and the rendered file loads.
	events := strings.Join(config.EventTypes(), ", ")
	cfg, _ := loadRenderedConfig(t, mustRender(t, "config: {webhooks: [{url: 'https://x.example', events: ["+events+"]}]}"))
	if diff := cmp.Diff(config.EventTypes(), cfg.Webhooks[0].Events); diff != "" {
		t.Errorf("webhook events (-want +got):\n%s", diff)
	}
	if _, err := helmTemplate(t, "config: {webhooks: [{url: 'https://x.example', events: [lock_stolen]}]}"); err == nil || !strings.Contains(err.Error(), "events") {
		t.Errorf("unknown event type accepted: %v", err)
	}
}
