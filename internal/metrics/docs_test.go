package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
)

// documentedSeries is one row of the table in docs/metrics.md.
type documentedSeries struct {
	Type   string
	Label  string
	Values []string
}

var backticked = regexp.MustCompile("`([^`]+)`")

func readDocumentedSeries(t *testing.T) map[string]documentedSeries {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]documentedSeries{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `atlantis_") {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) < 5 {
			t.Fatalf("docs/metrics.md: malformed row %q", line)
		}
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		cols = cols[1:]
		name := strings.Trim(cols[0], "`")
		s := documentedSeries{Type: cols[1]}
		if label, values, ok := strings.Cut(cols[2], ":"); ok {
			s.Label = strings.Trim(label, "` ")
			for _, m := range backticked.FindAllStringSubmatch(values, -1) {
				s.Values = append(s.Values, m[1])
			}
		} else if names := backticked.FindAllStringSubmatch(cols[2], -1); len(names) > 0 {
			// Several labels whose values come from the calls (verb, resource):
			// their names only.
			var labels []string
			for _, m := range names {
				labels = append(labels, m[1])
			}
			slices.Sort(labels) // as Prometheus gathers them
			s.Label = strings.Join(labels, ",")
		}
		out[name] = s
	}
	return out
}

// TestDocsListEverySeries keeps docs/metrics.md and the code in step: every
// registered series is documented with its type, label and label values, and
// nothing undocumented or stale is listed.
func TestDocsListEverySeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(func() (int, int) { return 0, 0 })
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	// The API-call series have no series before the first call.
	m.ObserveCall(apicalls.Call{Verb: "update", Resource: "leases", Kind: apicalls.KindTimeout})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]documentedSeries{}
	for _, mf := range families {
		s := documentedSeries{Type: strings.ToLower(mf.GetType().String())}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				s.Label = lp.GetName()
				s.Values = append(s.Values, lp.GetValue())
			}
			if labels := m.GetLabel(); len(labels) > 1 {
				// Label values from the calls: compare the names only.
				var names []string
				for _, lp := range labels {
					names = append(names, lp.GetName())
				}
				s.Label, s.Values = strings.Join(names, ","), nil
			}
		}
		got[mf.GetName()] = s
		if !strings.Contains(mf.GetHelp(), " ") {
			t.Errorf("%s: Help text %q explains nothing", mf.GetName(), mf.GetHelp())
		}
		for _, v := range s.Values {
			if !strings.Contains(mf.GetHelp(), v) {
				t.Errorf("%s: Help text does not list label value %q", mf.GetName(), v)
			}
		}
	}
	documented := readDocumentedSeries(t)
	// The events_total row names the event types by reference to events.md.
	if d, ok := documented["atlantis_lock_events_total"]; ok && len(d.Values) == 0 {
		d.Values = got["atlantis_lock_events_total"].Values
		documented["atlantis_lock_events_total"] = d
	}
	sortValues := cmp.Transformer("sort", func(in []string) []string {
		out := slices.Clone(in)
		slices.Sort(out)
		return out
	})
	if diff := cmp.Diff(documented, got, sortValues); diff != "" {
		t.Errorf("docs/metrics.md differs from the registered series (-documented +registered):\n%s", diff)
	}
}
