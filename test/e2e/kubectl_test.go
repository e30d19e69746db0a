//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kubectlNamespace holds the samples' LockRequests; it is deleted, with locks still
// held, in the uninstall step.
const kubectlNamespace = "e2e-kubectl"

// The samples of config/samples, by their LockRequest names.
const (
	samplePlain       = "infra-vpc-pr42"         // pull #42 of alice, modules/vpc
	sampleQueued      = "infra-vpc-pr57"         // pull #57 of bob, same key
	sampleFailFast    = "infra-vpc-pr61"         // pull #61 of carol, same key, queueTimeout 0s
	sampleMaintenance = "infra-prod-maintenance" // bob's manual lock of environments/prod
)

// acquiredReason is the JSONPath of the reason of a LockRequest's Acquired condition,
// which the STATE column shows.
const acquiredReason = `{.status.conditions[?(@.type=="Acquired")].reason}`

// testKubectl goes through docs/locking.md with kubectl as a person would: the
// samples, the queue, a hand-off, a force unlock, the printer columns and the Events.
func (s *suite) testKubectl(t *testing.T) {
	ns := kubectlNamespace
	s.createNamespace(t.Context(), t, ns)
	samples := filepath.Join(s.root, "config", "samples")

	// The plain sample first, so that it holds the key before the others ask.
	s.kubectl(t, "apply", "-n", ns, "-f", filepath.Join(samples, "locking_v1alpha1_lockrequest_1_plain.yaml"))
	s.waitFor(t, ns, samplePlain, "condition=Acquired")
	s.kubectl(t, "apply", "-n", ns, "-f", samples)
	s.waitFor(t, ns, sampleQueued, "condition=Queued")
	s.waitFor(t, ns, sampleFailFast, "jsonpath="+acquiredReason+"=Conflict")
	s.waitFor(t, ns, sampleMaintenance, "condition=Acquired")

	t.Run("kubectl get lockrequests", func(t *testing.T) {
		tb := s.getTable(t, "get", "lockrequests", "-n", ns, "-o", "wide")
		wantHeader := []string{"NAME", "REPOSITORY", "PATH", "WORKSPACE", "PULL", "STATE", "POSITION", "AGE", "PROJECT", "USER"}
		if diff := cmp.Diff(wantHeader, tb.header); diff != "" {
			t.Errorf("kubectl get lr -o wide columns (-want +got):\n%s", diff)
		}
		want := map[string]map[string]string{
			samplePlain:       {"REPOSITORY": "acme/infra", "PATH": "modules/vpc", "WORKSPACE": "default", "PULL": "42", "STATE": "Acquired", "POSITION": "", "PROJECT": "vpc-prod", "USER": "alice"},
			sampleQueued:      {"PULL": "57", "STATE": "Queued", "POSITION": "1", "USER": "bob"},
			sampleFailFast:    {"PULL": "61", "STATE": "Conflict", "POSITION": "", "USER": "carol"},
			sampleMaintenance: {"PATH": "environments/prod", "WORKSPACE": "prod", "PULL": "", "STATE": "Acquired", "PROJECT": "", "USER": "bob"},
		}
		checkRows(t, tb, want)
	})

	vpcLock := s.kubectl(t, "get", "lr", sampleQueued, "-n", ns, "-o", "jsonpath={.status.lockName}")
	prodLock := s.kubectl(t, "get", "lr", sampleMaintenance, "-n", ns, "-o", "jsonpath={.status.lockName}")
	t.Run("kubectl get projectlocks", func(t *testing.T) {
		tb := s.waitForRows(t, map[string]map[string]string{
			vpcLock:  {"REPOSITORY": "acme/infra", "PATH": "modules/vpc", "WORKSPACE": "default", "HOLDER": "42", "USER": "alice", "QUEUE": "1"},
			prodLock: {"PATH": "environments/prod", "WORKSPACE": "prod", "HOLDER": "", "USER": "bob"},
		}, "get", "projectlocks", "-n", ns)
		wantHeader := []string{"NAME", "REPOSITORY", "PATH", "WORKSPACE", "HOLDER", "USER", "QUEUE", "AGE"}
		if diff := cmp.Diff(wantHeader, tb.header); diff != "" {
			t.Errorf("kubectl get projectlocks columns (-want +got):\n%s", diff)
		}
		// Each ProjectLock has its Lease, held by the holder's request.
		leases := s.getTable(t, "get", "leases", "-n", ns)
		for lock, holder := range map[string]string{vpcLock: samplePlain, prodLock: sampleMaintenance} {
			if r, ok := leases.row(lock); !ok || !strings.HasPrefix(r["HOLDER"], holder+"/") {
				t.Errorf("Lease %s: %v, want it held by %s/<uid>", lock, r, holder)
			}
		}
	})

	t.Run("hand-off", func(t *testing.T) {
		// A wait that lasts a second gets its Queued Event (a shorter one records
		// none); then the hand-off records Acquired with the wait.
		s.waitForEvents(t, ns, sampleQueued, []event{
			{"Normal", "Queued", "waiting for acme/infra#42 at position 1"},
		})
		// kubectl delete returns at once (requests carry no finalizer); the Lease
		// still names the deleted request until the operator hands the key on.
		s.kubectl(t, "delete", "lr", samplePlain, "-n", ns)
		s.waitFor(t, ns, sampleQueued, "condition=Acquired")
		s.waitForRows(t, map[string]map[string]string{
			vpcLock: {"HOLDER": "57", "USER": "bob", "QUEUE": ""},
		}, "get", "projectlocks", "-n", ns)
		token := s.kubectl(t, "get", "lr", sampleQueued, "-n", ns, "-o", "jsonpath={.status.fencingToken}")
		s.waitForEvents(t, ns, sampleQueued, []event{
			{"Normal", "Queued", "waiting for acme/infra#42 at position 1"},
			// A grant after a wait says how long it waited.
			{"Normal", "Acquired", "acquired acme/infra/modules/vpc/default/vpc-prod with fencing token " + token + " after waiting "},
		})
	})

	t.Run("force unlock", func(t *testing.T) {
		s.kubectl(t, "delete", "projectlock", vpcLock, "-n", ns)
		s.waitFor(t, ns, sampleQueued, "jsonpath="+acquiredReason+"=Revoked")
		checkRows(t, s.getTable(t, "get", "lr", "-n", ns), map[string]map[string]string{
			sampleQueued: {"STATE": "Revoked"},
		})
		s.waitForEvents(t, ns, sampleQueued, []event{
			{"Warning", "Revoked", "the lock was force-unlocked by deleting its ProjectLock"},
		})
	})
}

// waitFor runs `kubectl wait --for=cond` on a LockRequest: a watch, not a poll.
func (s *suite) waitFor(t *testing.T, ns, name, cond string) {
	t.Helper()
	s.kubectl(t, "wait", "-n", ns, "lockrequest/"+name, "--for="+cond, "--timeout="+stepTimeout.String())
}

// getTable runs kubectl and parses its table.
func (s *suite) getTable(t *testing.T, args ...string) table {
	t.Helper()
	out := s.kubectl(t, args...)
	tb, err := parseTable(out)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return tb
}

// checkRows checks the given cells of the named rows.
func checkRows(t *testing.T, tb table, want map[string]map[string]string) {
	t.Helper()
	for _, m := range rowMismatches(tb, want) {
		t.Error(m)
	}
}

// waitForRows polls `kubectl args...` until the named rows of its table have the
// given cells, and returns the table: the operator writes a ProjectLock's status
// after its decisions about the requests, which kubectl wait has seen.
func (s *suite) waitForRows(t *testing.T, want map[string]map[string]string, args ...string) table {
	t.Helper()
	var tb table
	var mismatches []string
	var lastErr error
	err := poll(t.Context(), func(ctx context.Context) (bool, error) {
		out, err := s.kubectlOut(ctx, args...)
		if err == nil {
			tb, err = parseTable(out)
		}
		if lastErr = err; err != nil {
			return false, nil //nolint:nilerr // retried until the deadline, then reported
		}
		mismatches = rowMismatches(tb, want)
		return len(mismatches) == 0, nil
	})
	if err != nil {
		t.Fatalf("kubectl %s:%s\n(%v; last kubectl error: %v)", strings.Join(args, " "), joinLines(mismatches), err, lastErr)
	}
	return tb
}

// rowMismatches describes every wanted cell of the named rows that differs.
func rowMismatches(tb table, want map[string]map[string]string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		row, ok := tb.row(name)
		if !ok {
			out = append(out, fmt.Sprintf("no row %s in %v", name, tb.rows))
			continue
		}
		for _, col := range slices.Sorted(maps.Keys(want[name])) {
			if v := want[name][col]; row[col] != v {
				out = append(out, fmt.Sprintf("%s: %s = %q, want %q (row %v)", name, col, row[col], v, row))
			}
		}
	}
	return out
}

// event is one line of the Events section of `kubectl describe`.
type event struct{ typ, reason, message string }

// waitForEvents polls `kubectl describe lockrequest` until its Events show every
// wanted event (see event.matches): the operator records them asynchronously, after
// the decision.
func (s *suite) waitForEvents(t *testing.T, ns, name string, want []event) {
	t.Helper()
	var out string
	var got []event
	var lastErr error
	err := poll(t.Context(), func(ctx context.Context) (bool, error) {
		if out, lastErr = s.kubectlOut(ctx, "describe", "lockrequest", name, "-n", ns); lastErr != nil {
			return false, nil //nolint:nilerr // retried until the deadline, then reported
		}
		got = describedEvents(out)
		for _, w := range want {
			if !slices.ContainsFunc(got, w.matches) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("kubectl describe lockrequest %s shows the events %q, want %q among them (%v; last kubectl error: %v)", name, got, want, err, lastErr)
	}
	_, events, _ := strings.Cut(out, "\nEvents:\n")
	t.Logf("kubectl describe lockrequest %s, Events:\n%s", name, events)
}

// matches reports whether got is the event e: the same type and reason, and a
// message that starts with e's (the rest, such as how long a grant waited, varies).
func (e event) matches(got event) bool {
	return got.typ == e.typ && got.reason == e.reason && strings.HasPrefix(got.message, e.message)
}

// describedEvents parses the Events table at the end of `kubectl describe`:
// Type, Reason, Age, From, Message. Cells are cut by the header's columns, since an
// Age can read "8s (x2 over 10s)".
func describedEvents(out string) []event {
	_, section, ok := strings.Cut(out, "\nEvents:\n")
	if !ok {
		return nil
	}
	tb, err := parseTable(section)
	if err != nil {
		return nil
	}
	var events []event
	for _, r := range tb.rows {
		if r["Type"] != "" && !strings.HasPrefix(r["Type"], "-") {
			events = append(events, event{r["Type"], r["Reason"], r["Message"]})
		}
	}
	return events
}
