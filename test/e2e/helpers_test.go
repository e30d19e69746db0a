//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The log scan finds RBAC denials, as client-go logs them in the manager's JSON log,
// and nothing else that says forbidden.
func TestForbiddenFindsRBACDenialsOnly(t *testing.T) {
	lines := []string{
		// An RBAC denial (from a run with the events rule taken out of the chart's role).
		`{"level":"error","ts":"2026-11-25T21:33:29Z","logger":"events","msg":"Server rejected event (will not retry!)","event":{"namespace":"e2e-kubectl","name":"infra-vpc-pr42.18eb6741eece6cc3"},"error":"events.events.k8s.io is forbidden: User \"system:serviceaccount:atlantis-locks:atlantis-lock-operator\" cannot create resource \"events\" in API group \"events.k8s.io\" in the namespace \"e2e-kubectl\"","stacktrace":"k8s.io/client-go/tools/events.recordEvent"}`,
		// Not RBAC: an Event about an object of a namespace being deleted.
		`{"level":"error","ts":"2026-11-25T21:16:51Z","logger":"events","msg":"Server rejected event (will not retry!)","error":"events.events.k8s.io \"x.18eb66598a2fed85\" is forbidden: unable to create new content in namespace x because it is being terminated"}`,
		`{"level":"info","ts":"2026-11-25T21:16:24Z","logger":"setup","msg":"starting"}`,
		// A denial in plain text, as a panic or klog would print it.
		`E1125 leaderelection.go:448] error retrieving resource lock ns/x: leases.coordination.k8s.io "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "ns"`,
	}
	m := &manager{logPath: filepath.Join(t.TempDir(), "manager.log")}
	if err := os.WriteFile(m.logPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Server rejected event (will not retry!): events.events.k8s.io is forbidden: User "system:serviceaccount:atlantis-locks:atlantis-lock-operator" cannot create resource "events" in API group "events.k8s.io" in the namespace "e2e-kubectl"`,
		lines[3],
	}
	if diff := cmp.Diff(want, m.forbidden()); diff != "" {
		t.Errorf("forbidden() (-want +got):\n%s", diff)
	}

	// While the API server restarts (21:33:28.5 to 21:33:29.2), its denials are
	// its own; the plain-text line has no time and is always reported.
	restart := window{
		from: time.Date(2026, 11, 25, 21, 33, 28, 500_000_000, time.UTC),
		to:   time.Date(2026, 11, 25, 21, 33, 29, 200_000_000, time.UTC),
	}
	if diff := cmp.Diff(want[1:], m.forbidden(restart)); diff != "" {
		t.Errorf("forbidden(during a restart) (-want +got):\n%s", diff)
	}
	before := window{from: restart.from.Add(-time.Minute), to: restart.from.Add(-30 * time.Second)}
	if diff := cmp.Diff(want, m.forbidden(before)); diff != "" {
		t.Errorf("forbidden(a restart before) (-want +got):\n%s", diff)
	}
}

// Tables are cut by the header's columns, so that empty cells stay empty and the
// cells after them stay in their columns.
func TestParseTable(t *testing.T) {
	out := `NAME                                                 REPOSITORY   PATH                WORKSPACE   HOLDER   USER    QUEUE   AGE
acme-infra-environments-prod-prod-46a7um673f         acme/infra   environments/prod   prod                 bob             2s
acme-infra-modules-vpc-default-vpc-prod-ftuhc4doun   acme/infra   modules/vpc         default     42       alice   1       4s
`
	tb, err := parseTable(out)
	if err != nil {
		t.Fatal(err)
	}
	want := table{
		header: []string{"NAME", "REPOSITORY", "PATH", "WORKSPACE", "HOLDER", "USER", "QUEUE", "AGE"},
		rows: []map[string]string{
			{"NAME": "acme-infra-environments-prod-prod-46a7um673f", "REPOSITORY": "acme/infra", "PATH": "environments/prod", "WORKSPACE": "prod", "HOLDER": "", "USER": "bob", "QUEUE": "", "AGE": "2s"},
			{"NAME": "acme-infra-modules-vpc-default-vpc-prod-ftuhc4doun", "REPOSITORY": "acme/infra", "PATH": "modules/vpc", "WORKSPACE": "default", "HOLDER": "42", "USER": "alice", "QUEUE": "1", "AGE": "4s"},
		},
	}
	if diff := cmp.Diff(want, tb, cmp.AllowUnexported(table{})); diff != "" {
		t.Errorf("parseTable (-want +got):\n%s", diff)
	}

	events := `  Type     Reason    Age               From                    Message
  ----     ------    ----              ----                    -------
  Normal   Queued    8s (x2 over 9s)   atlantis-lock-operator  waiting for acme/infra#42 at position 1
  Warning  Revoked   0s                atlantis-lock-operator  the lock was force-unlocked by deleting its ProjectLock
`
	wantEvents := []event{
		{"Normal", "Queued", "waiting for acme/infra#42 at position 1"},
		{"Warning", "Revoked", "the lock was force-unlocked by deleting its ProjectLock"},
	}
	if diff := cmp.Diff(wantEvents, describedEvents("Name: x\nEvents:\n"+events), cmp.AllowUnexported(event{})); diff != "" {
		t.Errorf("describedEvents (-want +got):\n%s", diff)
	}
}
