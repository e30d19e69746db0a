package gateway_test

import (
	"context"
	"crypto/sha1" //nolint:gosec // Redis's script digest
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	atlantisredis "github.com/runatlantis/atlantis/server/core/redis"
	"github.com/runatlantis/atlantis/server/events/command"
	"github.com/runatlantis/atlantis/server/events/models"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/gateway"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/kv"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/resp"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/test/httpcheck"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/test/testcert"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

// rawClient is a go-redis client of the gateway, for what RedisDB never sends.
func (r *running) rawClient(t *testing.T, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), Password: password, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func lockValue(t *testing.T, p models.Project, pull int, user string) string {
	t.Helper()
	data, err := json.Marshal(models.ProjectLock{
		Project: p, Workspace: "default", Pull: pullRequest(p.RepoFullName, pull, "abc123"),
		User: models.User{Username: user}, Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestRefusals: every key shape, value and script that Atlantis v0.47.1 never
// writes gets an error that names it, and changes nothing.
func TestRefusals(t *testing.T) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, nil)
	c := gw.rawClient(t, "")
	ctx := context.Background()
	p := models.NewProject("acme/infra", ".", "")
	key := "pr/" + models.GenerateLockKey(p, "default")
	for _, tc := range []struct {
		name string
		args []any
		want string
	}{
		{"unknown key shape", []any{"SET", "session:42", "x"}, "ERR key 'session:42' is none of the keys Atlantis v0.47.1 writes"},
		{"GET of an unknown key shape", []any{"GET", "foo"}, "ERR key 'foo' is none of the keys"},
		{"old lock key format", []any{"SET", "pr/acme/infra/.", "{}"}, "ERR key 'pr/acme/infra/.' is not a lock key of Atlantis v0.47.1"},
		{"another global lock", []any{"SET", "global/plan/lock", "{}"}, "ERR key 'global/plan/lock': Atlantis locks only the apply command globally"},
		{"lock value not JSON", []any{"SET", key, "not json"}, "ERR value of lock key '" + key + "' is not the JSON of Atlantis's models.ProjectLock"},
		{"lock value of another key", []any{"SET", key, lockValue(t, models.NewProject("acme/other", ".", ""), 1, "alice")}, "ERR value of lock key '" + key + "' is the lock of key 'pr/acme/other/./default/'"},
		{"apply lock of another command", []any{"SET", keyspace.ApplyLockKey, `{"CommandName":1,"LockMetadata":{"UnixTime":5}}`}, "ERR value of key 'global/apply/lock' is a lock of command \"plan\", not apply"},
		{"another script", []any{"EVAL", "return redis.call('FLUSHALL')", "0"}, "ERR EVAL of script "},
		{"the unlock script on a pull status", []any{"EVAL", unlockScript(t), "1", "github.com::acme/infra::1", "1"}, "ERR the unlock-if-owned-by-pull script runs on lock keys"},
		{"a lock key the API cannot hold", []any{"SET", "pr/acme/in fra/./default/", lockValue(t, models.NewProject("acme/in fra", ".", ""), 1, "alice")}, "ERR trying to lock acme/in fra/./default/: creating LockRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Do(ctx, tc.args...).Err()
			if got := errorText(err); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%v: %q, want an error beginning %q", tc.args[:2], got, tc.want)
			}
		})
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err == nil || !strings.Contains(err.Error(), "unknown command 'keys'") {
		t.Errorf("KEYS: %v, %v; want unknown command", keys, err)
	}
	all, _, err := c.Scan(ctx, 0, "", 0).Result()
	if err != nil || len(all) != 0 {
		t.Errorf("after the refusals SCAN 0 = %q, %v; want no key", all, err)
	}
}

// unlockScript captures the script Atlantis's RedisDB.UnlockIfOwnedByPull sends,
// with a RESP server whose backend only records it, so that the test uses
// Atlantis's own text rather than a copy; and checks its digest.
func unlockScript(t *testing.T) string {
	t.Helper()
	rec := &scriptRecorder{}
	srv := resp.New(rec, resp.Config{Log: logr.Discard()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	addr := ln.Addr().(*net.TCPAddr)
	db, err := atlantisredis.New(addr.IP.String(), addr.Port, "", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.UnlockIfOwnedByPull(models.NewProject("a/b", ".", ""), "default", 1); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte(rec.script)) //nolint:gosec // Redis's script digest
	if got := hex.EncodeToString(sum[:]); got != keyspace.UnlockIfOwnedByPullScriptSHA1 {
		t.Fatalf("Atlantis's unlock script has digest %s, not keyspace.UnlockIfOwnedByPullScriptSHA1 %s", got, keyspace.UnlockIfOwnedByPullScriptSHA1)
	}
	return rec.script
}

// scriptRecorder is a resp.Backend with no keys that keeps the last EVAL's script.
type scriptRecorder struct{ script string }

func (*scriptRecorder) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }
func (*scriptRecorder) Set(context.Context, string, []byte) error         { return nil }
func (*scriptRecorder) Del(context.Context, string) (bool, error)         { return false, nil }
func (*scriptRecorder) Keys(context.Context, string) ([]string, error)    { return nil, nil }
func (r *scriptRecorder) Eval(_ context.Context, script string, _, _ []string) ([]byte, bool, error) {
	r.script = script
	return nil, false, nil
}

// TestLockSetSemantics: a SET of a held key is a grant only for its owner; the
// same for the global apply lock, which has no owner.
func TestLockSetSemantics(t *testing.T) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, nil)
	c := gw.rawClient(t, "")
	ctx := context.Background()
	p := models.NewProject("acme/infra", "modules/vpc", "")
	key := "pr/" + models.GenerateLockKey(p, "default")
	if err := c.Set(ctx, key, lockValue(t, p, 1, "alice"), 0).Err(); err != nil {
		t.Fatalf("SET of a free key: %v", err)
	}
	// The same pull again (Atlantis replicas retrying, go-redis retrying after a
	// timeout): accepted, the hold unchanged.
	if err := c.Set(ctx, key, lockValue(t, p, 1, "alice"), 0).Err(); err != nil {
		t.Errorf("SET by the holding pull: %v", err)
	}
	err := c.Set(ctx, key, lockValue(t, p, 2, "bob"), 0).Err()
	want := "LOCKED lock key '" + key + "' is held by pull #1 (alice) of acme/infra since 2026-11-25T10:00:00Z; not granted to pull #2 (bob)"
	if got := errorText(err); !strings.HasPrefix(got, want) {
		t.Errorf("SET by another pull: %q, want %q", got, want)
	}
	// The global apply lock: a SET while held is refused too (Redis would
	// overwrite it), and a DEL releases it.
	apply := `{"LockMetadata":{"UnixTime":1800000000},"CommandName":0}`
	if err := c.Set(ctx, keyspace.ApplyLockKey, apply, 0).Err(); err != nil {
		t.Fatalf("SET of the free apply lock: %v", err)
	}
	if got, err := c.Get(ctx, keyspace.ApplyLockKey).Result(); err != nil || got != apply {
		t.Errorf("GET of the apply lock = %s, %v; want %s", got, err, apply)
	}
	err = c.Set(ctx, keyspace.ApplyLockKey, apply, 0).Err()
	if got := errorText(err); !strings.HasPrefix(got, "LOCKED key 'global/apply/lock': the global apply lock already exists (since 2027-01-15T08:00:00Z)") {
		t.Errorf("SET of the held apply lock: %q", got)
	}
	if n, err := c.Del(ctx, keyspace.ApplyLockKey).Result(); err != nil || n != 1 {
		t.Errorf("DEL of the apply lock = %d, %v", n, err)
	}
	if n, err := c.Del(ctx, keyspace.ApplyLockKey).Result(); err != nil || n != 0 {
		t.Errorf("DEL of the free apply lock = %d, %v", n, err)
	}

	var lrs lockingv1alpha1.LockRequestList
	if err := env.Client.List(ctx, &lrs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(lrs.Items) != 1 || lrs.Items[0].Spec.Pull == nil || lrs.Items[0].Spec.Pull.Number != 1 {
		t.Errorf("LockRequests after the SETs: %d, want pull 1's only", len(lrs.Items))
	}
	// The holder shows in the ProjectLock, as `kubectl get projectlocks` shows it,
	// once the hold has lasted project_lock_delay.
	heldByPull1 := func(pl *lockingv1alpha1.ProjectLock) bool {
		return pl != nil && pl.Status.Holder != nil && pl.Status.Holder.Pull != nil && pl.Status.Holder.Pull.Number == 1
	}
	if _, err := env.WaitForProjectLock(ctx, ns, lrs.Items[0].Spec.Key().ObjectName(), heldByPull1); err != nil {
		t.Errorf("the ProjectLock of pull 1's lock %s: %v", lrs.Items[0].Spec.Key().ObjectName(), err)
	}
	var pls lockingv1alpha1.ProjectLockList
	if err := env.Client.List(ctx, &pls, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(pls.Items) != 1 {
		t.Errorf("ProjectLocks: %+v, want pull 1's only", pls.Items)
	}
}

// TestRestartAndMigrationLoseNothing: what one gateway stored, a new one (a restart,
// or the other replica) reads back, and Atlantis's start-up migration keeps it.
func TestRestartAndMigrationLoseNothing(t *testing.T) {
	ns := newNamespace(t)
	first := startGateway(t, ns, nil)
	db := first.redisDB(t, "")
	p := models.NewProject("group/sub/repo", "modules/vpc", "vpc")
	pull := pullRequest("group/sub/repo", 7, "abc123")
	lockTime := time.Date(2026, 11, 25, 10, 0, 0, 5, time.Local)
	if ok, _, err := db.TryLock(models.ProjectLock{Project: p, Workspace: "prod", Pull: pull, User: models.User{Username: "alice"}, Time: lockTime}); err != nil || !ok {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	status, err := db.UpdatePullWithResults(pull, []command.ProjectResult{{Command: command.Apply, RepoRelDir: p.Path, Workspace: "prod", ProjectName: p.ProjectName}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LockCommand(command.Apply, time.Unix(1_800_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	wantLocks, err := db.List()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	second := startGateway(t, ns, nil)
	again := second.redisDB(t, "") // redis.New runs the lock key migration
	gotLocks, err := again.List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantLocks, gotLocks); diff != "" || len(gotLocks) != 1 {
		t.Errorf("locks after a restart (-before +after):\n%s", diff)
	}
	gotStatus, err := again.GetPullStatus(pull)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&status, gotStatus); diff != "" {
		t.Errorf("pull status after a restart (-before +after):\n%s", diff)
	}
	apply, err := again.CheckCommandLock(command.Apply)
	if err != nil || apply == nil || apply.LockMetadata.UnixTime != 1_800_000_000 {
		t.Errorf("apply lock after a restart: %+v, %v", apply, err)
	}
}

// TestPullStatusSecret: a pull status is one Secret, of the gateway's type, label
// and key annotation, holding exactly the bytes Atlantis wrote.
func TestPullStatusSecret(t *testing.T) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, nil)
	db := gw.redisDB(t, "")
	mr, ref := newMiniredis(t)
	pull := pullRequest("acme/infra", 12, "abc123")
	results := []command.ProjectResult{{Command: command.Apply, RepoRelDir: ".", Workspace: "default"}}
	for _, d := range []interface {
		UpdatePullWithResults(models.PullRequest, []command.ProjectResult) (models.PullStatus, error)
	}{db, ref} {
		if _, err := d.UpdatePullWithResults(pull, results); err != nil {
			t.Fatal(err)
		}
	}
	key := "github.com::acme/infra::12"
	want, err := mr.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	var sec corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: kv.SecretName(key)}, &sec); err != nil {
		t.Fatal(err)
	}
	if sec.Type != kv.SecretType || sec.Labels[kv.ManagedByLabel] != kv.ManagedByValue || sec.Annotations[kv.KeyAnnotation] != key {
		t.Errorf("secret %s: type %q, labels %v, annotations %v", sec.Name, sec.Type, sec.Labels, sec.Annotations)
	}
	if got := string(sec.Data[kv.ValueField]); got != want {
		t.Errorf("secret value:\n%s\nminiredis holds:\n%s", got, want)
	}
	if err := db.DeletePullStatus(pull); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(&sec), &sec); err == nil {
		t.Errorf("secret %s still exists after DeletePullStatus", sec.Name)
	}
}

// TestKubectlLockShowsInAtlantis: a lock taken without Atlantis (a LockRequest
// made by kubectl or pkg/lockclient) is on Atlantis's lock list, and blocks it.
func TestKubectlLockShowsInAtlantis(t *testing.T) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, nil)
	db := gw.redisDB(t, "")
	kc, err := client.NewWithWatch(env.Config, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	lc := lockclient.New(kc, ns)
	st, err := lc.TryLock(context.Background(), lockclient.Request{
		Project:   lockingv1alpha1.ProjectRef{Repository: "acme/infra", Path: "modules/vpc"},
		Workspace: "default",
		Pull:      &lockingv1alpha1.PullRequestRef{Number: 99},
		User:      lockingv1alpha1.UserRef{Username: "oncall"},
	})
	if err != nil || st.State != lockclient.StateAcquired {
		t.Fatalf("lockclient.TryLock: %v, %v", st, err)
	}
	locks, err := db.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 || locks[0].Pull.Num != 99 || locks[0].User.Username != "oncall" || locks[0].Project.Path != "modules/vpc" {
		t.Fatalf("Atlantis's List: %+v, want the lock of pull 99", locks)
	}
	ok, holder, err := db.TryLock(models.ProjectLock{Project: models.NewProject("acme/infra", "modules/vpc", ""), Workspace: "default",
		Pull: pullRequest("acme/infra", 5, "abc"), User: models.User{Username: "alice"}, Time: time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)})
	if err != nil || ok || holder.Pull.Num != 99 {
		t.Errorf("Atlantis's TryLock of the held key: %v, %+v, %v; want refused, held by pull 99", ok, holder.Pull, err)
	}
}

// TestAuthMetricsHealth: a password-protected gateway, its metrics and probes.
func TestAuthMetricsHealth(t *testing.T) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, func(c *gateway.Config) { c.Password = "s3cret" })
	if err := gw.rawClient(t, "wrong").Ping(context.Background()).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("PING with a wrong password: %v", err)
	}
	db := gw.redisDB(t, "s3cret")
	if _, err := db.GetLock(models.NewProject("acme/infra", ".", ""), "default"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ok",
		"/metrics": `atlantis_gateway_commands_total{command="get",result="ok"} 1`,
	} {
		body := httpGet(t, "http://"+gw.httpAddr+path)
		if !strings.Contains(body, want) {
			t.Errorf("%s does not contain %q:\n%s", path, want, body)
		}
	}
	metrics := httpGet(t, "http://"+gw.httpAddr+"/metrics")
	for _, want := range []string{
		`atlantis_gateway_command_errors_total{command="hello",kind="auth"} 1`,
		`atlantis_gateway_command_duration_seconds_bucket{command="get",le=`,
		"atlantis_gateway_connections ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics does not contain %q", want)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	return httpcheck.Do(context.Background(), t, http.DefaultClient, http.MethodGet, url, http.StatusOK)
}

// TestAtlantisHandshakeTLSPasswordDB: Atlantis's RedisDB as --redis-tls-enabled
// --redis-insecure-skip-verify --redis-password --redis-db=3 make it (HELLO 3 with
// AUTH over TLS, then SELECT 3), against a gateway with TLS, a password and DB 3;
// and what it says when one of them does not match.
func TestAtlantisHandshakeTLSPasswordDB(t *testing.T) {
	ns := newNamespace(t)
	cert, _ := testcert.New(t)
	gw := startGateway(t, ns, func(c *gateway.Config) {
		c.Password, c.DB = "s3cret", 3
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	})
	db, err := atlantisredis.New(gw.host, gw.port, "s3cret", true, true, 3)
	if err != nil {
		t.Fatalf("redis.New with TLS, password and DB 3: %v", err)
	}
	defer func() { _ = db.Close() }()
	p := models.NewProject("acme/infra", ".", "")
	ok, _, err := db.TryLock(models.ProjectLock{Project: p, Workspace: "default", Pull: pullRequest("acme/infra", 3, "abc"),
		User: models.User{Username: "alice"}, Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
	if err != nil || !ok {
		t.Fatalf("TryLock over TLS: %v, %v", ok, err)
	}
	if lock, err := db.GetLock(p, "default"); err != nil || lock == nil || lock.Pull.Num != 3 {
		t.Errorf("GetLock over TLS: %+v, %v", lock, err)
	}
	for _, tc := range []struct {
		name     string
		password string
		tls      bool
		db       int
		want     string
	}{
		{"wrong password", "wrong", true, 3, "WRONGPASS"},
		{"another DB", "s3cret", true, 2, "DB index 2: this gateway serves only DB 3"},
		{"no TLS", "s3cret", false, 3, "failed to connect to redis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := atlantisredis.New(gw.host, gw.port, tc.password, tc.tls, true, tc.db)
			if err == nil {
				_ = db.Close()
				t.Fatalf("redis.New succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("redis.New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTryLockRightAfterAGrant: a second pull's TryLock just after the first pull's
// is refused with the holder, as Redis answers it, even though the gateway's cache
// does not show the new holder yet and the key has no ProjectLock yet (the operator
// makes it only once a hold has lasted project_lock_delay): the fast read finds the
// key's Lease and leaves the answer to the full read.
func TestTryLockRightAfterAGrant(t *testing.T) {
	ns := newNamespace(t)
	gw := startGateway(t, ns, nil)
	db := gw.redisDB(t, "")
	for i := range 10 {
		p := models.NewProject("acme/infra", fmt.Sprintf("stacks/s%d", i), "")
		lock := func(pull int) models.ProjectLock {
			return models.ProjectLock{Project: p, Workspace: "default", User: models.User{Username: "alice"},
				Pull: pullRequest("acme/infra", pull, "abc"), Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
		}
		if ok, _, err := db.TryLock(lock(1)); err != nil || !ok {
			t.Fatalf("%s: TryLock of the free key: acquired %t, %v", p.Path, ok, err)
		}
		ok, holder, err := db.TryLock(lock(2))
		if err != nil || ok || holder.Pull.Num != 1 {
			t.Errorf("%s: TryLock of the key pull 1 just took: acquired %t, holder pull %d, error %v; want refused, held by pull 1",
				p.Path, ok, holder.Pull.Num, err)
		}
	}
}
