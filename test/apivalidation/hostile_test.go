//go:build e2e

package apivalidation

// Hostile LockRequests: what a careless or malicious client could send. Each is
// either refused by the API server with a message that names the field, or accepted
// and handled by the operator without harm: no lock shared between two keys, no
// stuck key, no operator that stops serving.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/health"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/benchutil"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// TestHostileLockRequestsAreRefused: huge strings, look-alike characters where the
// schema allows ASCII only, path traversal and oversized metadata are refused with
// a 422 whose cause names the field.
func TestHostileLockRequestsAreRefused(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const (
		shouldMatch = "should match"
		tooLong     = "Too long"
		dotDot      = "path must not contain '..'"
	)
	manyTeams := make([]string, 10000)
	for i := range manyTeams {
		manyTeams[i] = fmt.Sprintf("team-%d", i)
	}
	cases := []struct {
		name     string
		spec     specMut
		meta     func(*metav1.ObjectMeta)
		field    string
		fragment string
	}{
		// Huge strings: far beyond every MaxLength, still under the API server's 3 MiB body limit.
		{name: "username of 1 MiB", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Username = strings.Repeat("u", 1<<20) },
			field: "spec.user.username", fragment: tooLong},
		{name: "path of 64 KiB", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = strings.Repeat("a/", 32<<10) + "b" },
			field: "spec.project.path", fragment: tooLong},
		{name: "pull url of 1 MiB", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Pull.URL = "https://x/" + strings.Repeat("p", 1<<20) },
			field: "spec.pull.url", fragment: tooLong},
		{name: "10,000 teams", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.User.Teams = manyTeams },
			field: "spec.user.teams", fragment: "Too many"},
		{name: "annotations of 300 KiB", meta: func(m *metav1.ObjectMeta) {
			m.Annotations = map[string]string{"note": strings.Repeat("n", 300<<10)}
		}, field: "metadata.annotations", fragment: tooLong},

		// Unicode look-alikes where the lock key must stay ASCII.
		{name: "repository with a Cyrillic а", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = "acme/infr\u0430" },
			field: "spec.project.repository", fragment: shouldMatch},
		{name: "repository with a fullwidth solidus", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = "acme\uff0finfra" },
			field: "spec.project.repository", fragment: shouldMatch},
		{name: "repository with a division slash", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Repository = "acme\u2215infra" },
			field: "spec.project.repository", fragment: shouldMatch},
		{name: "workspace with a zero-width space", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Workspace = "de\u200bfault" },
			field: "spec.workspace", fragment: shouldMatch},
		{name: "workspace with a right-to-left override", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Workspace = "prod\u202edev" },
			field: "spec.workspace", fragment: shouldMatch},
		{name: "project name with a Cyrillic с", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Name = "vp\u0441-prod" },
			field: "spec.project.name", fragment: shouldMatch},
		{name: "object name with a Cyrillic а", meta: func(m *metav1.ObjectMeta) { m.Name = "infr\u0430-vpc" },
			field: "metadata.name", fragment: "RFC 1123"},

		// Path traversal.
		{name: "path escaping the repository", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = "modules/../../../etc/passwd" },
			field: "spec.project.path", fragment: dotDot},
		{name: "absolute path", spec: func(s *lockingv1alpha1.LockRequestSpec) { s.Project.Path = "/etc/passwd" },
			field: "spec.project.path", fragment: "must be relative"},
		{name: "label value with a traversal", meta: func(m *metav1.ObjectMeta) {
			m.Labels = map[string]string{lockingv1alpha1.LockNameLabel: "../../kube-system"}
		}, field: "metadata.labels", fragment: "consist of alphanumeric characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			lr := lockRequest(ns, objectName(t), spec)
			if tc.meta != nil {
				tc.meta(&lr.ObjectMeta)
			}
			err := env.Client.Create(ctx, lr)
			wantInvalid(t, err, tc.field, tc.fragment)
			if msg := err.Error(); len(msg) > 4096 {
				t.Errorf("the error repeats the hostile value: %d bytes", len(msg))
			}
		})
	}
}

// operatorLogOnce silences controller-runtime's log for the operators these tests
// start (TestMain starts none).
var operatorLogOnce sync.Once

// startOperator runs the operator with cfg for this test, serving only namespace
// ns, until the test ends.
func startOperator(t *testing.T, cfg config.Config, ns string) *testenv.Operator {
	t.Helper()
	operatorLogOnce.Do(func() { ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard))) })
	op, err := env.StartOperator(cfg, func(o *ctrl.Options) {
		o.Cache.DefaultNamespaces = map[string]cache.Config{ns: {}}
	})
	if err != nil {
		t.Fatalf("starting the operator: %v", err)
	}
	t.Cleanup(func() {
		if err := op.Stop(); err != nil {
			t.Errorf("stopping the operator: %v", err)
		}
	})
	return op
}

// decisionTimeout bounds each wait for the operator's decisions; a deadline, not a
// measurement.
const decisionTimeout = 8 * time.Minute

// waitReasons polls the namespace's LockRequests until want accepts their Acquired
// reasons (by name; "" when undecided), and returns them.
func waitReasons(t *testing.T, ns string, want func(map[string]string) bool) map[string]string {
	t.Helper()
	var reasons map[string]string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, decisionTimeout, true, func(ctx context.Context) (bool, error) {
		var list lockingv1alpha1.LockRequestList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		reasons = make(map[string]string, len(list.Items))
		for _, lr := range list.Items {
			reasons[lr.Name] = ""
			if c := meta.FindStatusCondition(lr.Status.Conditions, lockingv1alpha1.ConditionAcquired); c != nil {
				reasons[lr.Name] = c.Reason
			}
		}
		return want(reasons), nil
	})
	if err != nil {
		t.Fatalf("the operator did not decide as expected within %s: %v; reasons now: %v", decisionTimeout, err, countReasons(reasons))
	}
	return reasons
}

// countReasons counts requests by reason.
func countReasons(reasons map[string]string) map[string]int {
	n := map[string]int{}
	for _, r := range reasons {
		n[r]++
	}
	return n
}

func getLockRequest(t *testing.T, ns, name string) *lockingv1alpha1.LockRequest {
	t.Helper()
	lr := &lockingv1alpha1.LockRequest{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, lr); err != nil {
		t.Fatal(err)
	}
	return lr
}

// TestHostileLockRequestsAreHandled: requests the schema accepts but that look
// like something else (look-alike paths, keys whose ProjectLock names slug alike,
// traversal spelt so that no rule sees it, names and usernames at their limits)
// each get a lock of their own, granted at once to their own owner, with a
// ProjectLock and Lease of their own. The operator never uses a path as a file
// path, so a traversal spelt differently is only an odd key.
func TestHostileLockRequestsAreHandled(t *testing.T) {
	ns := newNamespace(t)
	startOperator(t, config.Default(), ns)

	longName := strings.Repeat("n", 240) + "-long-name"
	cases := []struct {
		name, repository, path, username string
	}{
		{name: "plain", path: "modules/vpc"},
		// Look-alikes of modules/vpc: Cyrillic р, a trailing zero-width space, a
		// decomposed é beside a composed one.
		{name: "cyrillic", path: "modules/v\u0440c"},
		{name: "zero-width", path: "modules/vpc\u200b"},
		{name: "composed", path: "modules/caf\u00e9"},
		{name: "decomposed", path: "modules/cafe\u0301"},
		// Keys whose ProjectLock names have the same readable slug.
		{name: "slash", path: "a/b"},
		{name: "dash", path: "a-b"},
		{name: "underscore", path: "a_b"},
		{name: "upper", path: "A/B"},
		// Traversal the rules do not read as such.
		{name: "percent", path: "%2e%2e/%2e%2e/etc/passwd"},
		{name: "backslash", path: `..\..\etc\passwd`},
		{name: "dots", path: "...../etc"},
		// GitHub refuses ".." as an owner or repository name; the schema does not,
		// and for the operator it is a repository name like any other.
		{name: "repository-dotdot", repository: "acme/../etc", path: "."},
		// Limits: a 250-character name, a 255-character username of 2-byte letters.
		{name: longName, path: "limits", username: strings.Repeat("ж", 255)},
	}
	for i, tc := range cases {
		spec := validSpec()
		spec.Project.Path, spec.Project.Name = tc.path, ""
		spec.Pull.Number = int32(100 + i)
		if tc.username != "" {
			spec.User.Username = tc.username
		}
		if tc.repository != "" {
			spec.Project.Repository = tc.repository
		}
		if err := env.Client.Create(context.Background(), lockRequest(ns, tc.name, spec)); err != nil {
			t.Fatalf("creating %s with path %q: %v", tc.name, tc.path, err)
		}
	}
	waitReasons(t, ns, func(r map[string]string) bool {
		return countReasons(r)[lockingv1alpha1.ReasonAcquired] == len(cases)
	})

	lockNames := map[string]string{}
	slugs := map[string][]string{}
	for _, tc := range cases {
		lr := getLockRequest(t, ns, tc.name)
		key := lockkey.New(lr.Spec.Project.Repository, lr.Spec.Project.Path, lr.Spec.Workspace, lr.Spec.Project.Name)
		if lr.Status.LockKey != key.String() {
			t.Errorf("%s: status.lockKey %q, want the path as written: %q", tc.name, lr.Status.LockKey, key.String())
		}
		if other, dup := lockNames[lr.Status.LockName]; dup {
			t.Errorf("%s and %s share the lock %s", tc.name, other, lr.Status.LockName)
		}
		lockNames[lr.Status.LockName] = tc.name
		slug := lr.Status.LockName[:strings.LastIndexByte(lr.Status.LockName, '-')]
		slugs[slug] = append(slugs[slug], tc.name)
		lease := &coordinationv1.Lease{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: lr.Status.LockName}, lease); err != nil {
			t.Errorf("%s: the Lease of its lock: %v", tc.name, err)
			continue
		}
		if want := lr.Name + "/" + string(lr.UID); lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != want {
			t.Errorf("%s: Lease %s held by %v, want %s", tc.name, lease.Name, lease.Spec.HolderIdentity, want)
		}
		for _, c := range lr.Status.Conditions {
			if !utf8Valid(c.Message) {
				t.Errorf("%s: condition %s message is not valid UTF-8: %q", tc.name, c.Type, c.Message)
			}
		}
	}
	// The point of the hash in the names: these slug alike and still lock apart.
	for _, group := range [][]string{{"slash", "dash", "underscore", "upper"}, {"plain", "zero-width"}} {
		if got := slugs[slugOf(t, ns, group[0])]; len(got) != len(group) {
			t.Errorf("keys %v should share one readable slug and differ by hash; the slug %q has %v", group, slugOf(t, ns, group[0]), got)
		}
	}
}

func slugOf(t *testing.T, ns, name string) string {
	t.Helper()
	n := getLockRequest(t, ns, name).Status.LockName
	return n[:strings.LastIndexByte(n, '-')]
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\ufffd") == s }

// TestThousandsOfRequestsFromOneOwner: 2,000 requests for one key from one user's
// 2,000 pulls fill the queue up to max_queue_length and the rest end QueueFull;
// 1,000 requests for another key from one pull are one re-entrant hold. Afterwards
// the operator is healthy and serves a new key. (The operator decides one key's
// requests one at a time, each with a status write: on a quiet 2-core machine the
// two floods take about a minute.)
func TestThousandsOfRequestsFromOneOwner(t *testing.T) {
	cfg := config.Default()
	cfg.MaxQueueLength = floodMaxQueue
	ns := newNamespace(t)
	op := startOperator(t, cfg, ns)

	// The two floods go to two keys, which the operator serves in parallel.
	t.Run("floods", func(t *testing.T) {
		t.Run("one pull", func(t *testing.T) {
			t.Parallel()
			flood(t, ns, "same", reentrantRequests, func(int) int32 { return 42 })
			reasons := waitReasons(t, ns, prefixCount("same-", func(n map[string]int) bool { return n[lockingv1alpha1.ReasonAcquired] == reentrantRequests }))
			if n := countPrefixed(reasons, "same-"); n[lockingv1alpha1.ReasonAcquired] != reentrantRequests {
				t.Errorf("requests by reason %v, want all %d Acquired", n, reentrantRequests)
			}
			pl := projectLockOf(t, ns, "same-0000")
			if pl.Status.Holder == nil || pl.Status.Holder.Owner != "acme/infra#42" || pl.Status.QueueLength != 0 {
				t.Errorf("ProjectLock %s: holder %+v, queue length %d; want acme/infra#42 and no queue", pl.Name, pl.Status.Holder, pl.Status.QueueLength)
			}
		})
		t.Run("one user, many pulls", func(t *testing.T) {
			t.Parallel()
			flood(t, ns, "many", floodRequests, func(i int) int32 { return int32(1000 + i) })
			reasons := waitReasons(t, ns, prefixCount("many-", func(n map[string]int) bool {
				return n[lockingv1alpha1.ReasonAcquired]+n[lockingv1alpha1.ReasonQueued]+n[lockingv1alpha1.ReasonQueueFull] == floodRequests
			}))
			n := countPrefixed(reasons, "many-")
			want := map[string]int{lockingv1alpha1.ReasonAcquired: 1, lockingv1alpha1.ReasonQueued: floodMaxQueue,
				lockingv1alpha1.ReasonQueueFull: floodRequests - 1 - floodMaxQueue}
			for reason, count := range want {
				if n[reason] != count {
					t.Errorf("%d requests %s, want %d (all: %v)", n[reason], reason, count, n)
				}
			}
			for name, reason := range reasons {
				if strings.HasPrefix(name, "many-") && reason == lockingv1alpha1.ReasonQueueFull {
					c := meta.FindStatusCondition(getLockRequest(t, ns, name).Status.Conditions, lockingv1alpha1.ConditionAcquired)
					if want := fmt.Sprintf("maximum of %d waiters", floodMaxQueue); !strings.Contains(c.Message, want) {
						t.Errorf("%s: QueueFull message %q does not say %q", name, c.Message, want)
					}
					break
				}
			}
			pl := projectLockOf(t, ns, "many-0000")
			if pl.Status.QueueLength != floodMaxQueue || len(pl.Status.Queue) == 0 {
				t.Errorf("ProjectLock %s: queue length %d with %d entries shown; want %d waiters", pl.Name, pl.Status.QueueLength, len(pl.Status.Queue), floodMaxQueue)
			}
		})
	})

	t.Run("operator still healthy and serving", func(t *testing.T) {
		report := op.Health.CheckNow(context.Background())
		for name, st := range report.Components {
			if st.Status == health.StatusUnhealthy {
				t.Errorf("component %s is %s (score %d): %s", name, st.Status, st.Score, st.LastError)
			}
		}
		spec := validSpec()
		spec.Project.Path = "afterwards"
		if err := env.Client.Create(context.Background(), lockRequest(ns, "afterwards", spec)); err != nil {
			t.Fatal(err)
		}
		waitReasons(t, ns, func(r map[string]string) bool { return r["afterwards"] == lockingv1alpha1.ReasonAcquired })
	})
}

// The floods of TestThousandsOfRequestsFromOneOwner.
const (
	floodRequests     = 2000
	reentrantRequests = 1000
	floodMaxQueue     = 100
	floodCreators     = 16
)

// flood creates n requests named PREFIX-NNNN for the key of path PREFIX, from
// floodCreators clients at once, with the pull numbers pull gives.
func flood(t *testing.T, ns, prefix string, n int, pull func(i int) int32) {
	t.Helper()
	err := benchutil.Parallel(context.Background(), floodCreators, func(ctx context.Context, w int) error {
		for i := w; i < n; i += floodCreators {
			spec := validSpec()
			spec.Project.Path, spec.QueueTimeout, spec.TTL = prefix, nil, nil
			spec.Pull.Number = pull(i)
			if err := env.Client.Create(ctx, lockRequest(ns, fmt.Sprintf("%s-%04d", prefix, i), spec)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("creating %d requests: %v", n, err)
	}
}

// countPrefixed counts the requests named PREFIX... by reason.
func countPrefixed(reasons map[string]string, prefix string) map[string]int {
	n := map[string]int{}
	for name, reason := range reasons {
		if strings.HasPrefix(name, prefix) {
			n[reason]++
		}
	}
	return n
}

// prefixCount is a waitReasons condition on the counts of the requests named PREFIX....
func prefixCount(prefix string, ok func(map[string]int) bool) func(map[string]string) bool {
	return func(r map[string]string) bool { return ok(countPrefixed(r, prefix)) }
}

// projectLockOf reads the ProjectLock of a request's key.
func projectLockOf(t *testing.T, ns, request string) *lockingv1alpha1.ProjectLock {
	t.Helper()
	pl := &lockingv1alpha1.ProjectLock{}
	name := getLockRequest(t, ns, request).Status.LockName
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pl); err != nil {
		t.Fatalf("the ProjectLock %s of %s: %v", name, request, err)
	}
	return pl
}
