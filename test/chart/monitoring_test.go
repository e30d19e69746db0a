package chart

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
	"github.com/runatlantis/atlantis-lock-operator/internal/metrics"
)

// designMetrics are the metric names DESIGN.md fixes (section Metrics), with their
// labels, and the operator's series of its API calls (issue 14). Alerts and
// dashboards may use these and nothing else.
var designMetrics = map[string][]string{
	"atlantis_backend_request_duration_seconds": {"verb", "resource"}, // histogram
	"atlantis_backend_request_errors_total":     {"verb", "resource", "kind"},
	"atlantis_backend_circuit_state":            nil,
	"atlantis_lock_requests_total":              {"result"},
	"atlantis_lock_wait_duration_seconds":       nil, // histogram
	"atlantis_lock_hold_duration_seconds":       nil, // histogram
	"atlantis_locks_held":                       nil,
	"atlantis_lock_queue_depth":                 nil,
	"atlantis_lock_deadlocks_detected_total":    nil,
	"atlantis_lock_timeouts_total":              {"kind"},
	"atlantis_lock_events_total":                {"type"},
	"atlantis_lock_events_dropped_total":        nil,
	"atlantis_lock_webhook_deliveries_total":    {"result"},
	"atlantis_lock_error_rate":                  nil,
	"atlantis_component_health":                 {"component"},
	"atlantis_lock_health_score":                nil,
}

// designHistograms are the histograms among designMetrics: only their _bucket, _sum
// and _count series exist.
var designHistograms = []string{"atlantis_lock_wait_duration_seconds", "atlantis_lock_hold_duration_seconds", "atlantis_backend_request_duration_seconds"}

// promFunctions are the PromQL functions and aggregations the rules may call.
var promFunctions = []string{"sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "abs", "clamp_min", "clamp_max"}

// promExpr is what checkPromQL learnt about one expression.
type promExpr struct {
	metrics    []string // series names, such as atlantis_lock_wait_duration_seconds_bucket
	comparison string   // the top-level comparison operator, if any
}

// checkPromQL parses a PromQL expression just enough to check it: balanced
// brackets, known functions, series from designMetrics (histograms only through their
// _bucket/_sum/_count series), grouping labels those series have, range selectors
// only after a series, and at most one comparison at the top level.
func checkPromQL(expr string) (promExpr, error) {
	var out promExpr
	type frame struct {
		open   rune
		labels bool // a by/without list or a {} matcher: identifiers are labels
	}
	var stack []frame
	var prev string // previous token
	seriesLabels := map[string]bool{"le": false}
	usedLabels := []string{}
	rs := []rune(expr)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
			continue
		case r == '(' || r == '{':
			stack = append(stack, frame{open: r, labels: r == '{' || prev == "by" || prev == "without"})
		case r == ')' || r == '}':
			want := map[rune]rune{')': '(', '}': '{'}[r]
			if len(stack) == 0 || stack[len(stack)-1].open != want {
				return out, fmt.Errorf("unbalanced %q at %d", r, i)
			}
			stack = stack[:len(stack)-1]
		case r == '[':
			end := slices.Index(rs[i:], ']')
			if end < 0 {
				return out, fmt.Errorf("unclosed range selector at %d", i)
			}
			rng := string(rs[i+1 : i+end])
			if !strings.HasPrefix(prev, "atlantis_") {
				return out, fmt.Errorf("range selector [%s] after %q, want it after a series", rng, prev)
			}
			if !isPromDuration(rng) {
				return out, fmt.Errorf("range [%s] is not a duration", rng)
			}
			i += end + 1
			prev = "]"
			continue
		case r == ',':
		case strings.ContainsRune("<>=!", r):
			op := string(r)
			if i+1 < len(rs) && rs[i+1] == '=' {
				op += "="
				i++
			}
			if op == "=" || op == "!" {
				return out, fmt.Errorf("operator %q at %d is not a comparison", op, i)
			}
			if len(stack) == 0 {
				if out.comparison != "" {
					return out, fmt.Errorf("two top-level comparisons")
				}
				out.comparison = op
			}
			prev = op
			i++
			continue
		case strings.ContainsRune("+-*/", r):
		case unicode.IsDigit(r) || r == '.':
			j := i
			for j < len(rs) && (unicode.IsDigit(rs[j]) || rs[j] == '.' || rs[j] == 'e') {
				j++
			}
			prev = string(rs[i:j])
			i = j
			continue
		case r == '"' || r == '\'':
			end := slices.Index(rs[i+1:], r)
			if end < 0 {
				return out, fmt.Errorf("unclosed string at %d", i)
			}
			i += end + 2
			prev = "string"
			continue
		case unicode.IsLetter(r) || r == '_':
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_' || rs[j] == ':') {
				j++
			}
			id := string(rs[i:j])
			k := j
			for k < len(rs) && unicode.IsSpace(rs[k]) {
				k++
			}
			// A call: f(...), or an aggregation with its grouping first: sum by (le) (...).
			rest := string(rs[k:])
			call := strings.HasPrefix(rest, "(") || strings.HasPrefix(rest, "by ") || strings.HasPrefix(rest, "by(") ||
				strings.HasPrefix(rest, "without ") || strings.HasPrefix(rest, "without(")
			switch {
			case len(stack) > 0 && stack[len(stack)-1].labels:
				usedLabels = append(usedLabels, id)
			case id == "by" || id == "without" || id == "and" || id == "or" || id == "unless" || id == "bool":
			case call:
				if !slices.Contains(promFunctions, id) {
					return out, fmt.Errorf("unknown function %s", id)
				}
			default:
				base, ok := designSeries(id)
				if !ok {
					return out, fmt.Errorf("%s is not a metric of DESIGN.md (section Metrics)", id)
				}
				out.metrics = append(out.metrics, id)
				for _, l := range designMetrics[base] {
					seriesLabels[l] = true
				}
				if strings.HasSuffix(id, "_bucket") {
					seriesLabels["le"] = true
				}
			}
			prev = id
			i = j
			continue
		default:
			return out, fmt.Errorf("unexpected %q at %d", r, i)
		}
		prev = string(r)
		i++
	}
	if len(stack) > 0 {
		return out, fmt.Errorf("unclosed %q", stack[len(stack)-1].open)
	}
	if len(out.metrics) == 0 {
		return out, fmt.Errorf("no atlantis_ metric")
	}
	for _, l := range usedLabels {
		if !seriesLabels[l] {
			return out, fmt.Errorf("label %s is not a label of %v", l, out.metrics)
		}
	}
	return out, nil
}

// designSeries maps a series name to its metric in designMetrics.
func designSeries(series string) (string, bool) {
	for _, h := range designHistograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if series == h+suffix {
				return h, true
			}
		}
		if series == h {
			return "", false // a histogram has no series of its bare name
		}
	}
	_, ok := designMetrics[series]
	return series, ok
}

func isPromDuration(s string) bool {
	if s == "" {
		return false
	}
	digits := strings.TrimRight(s, "smhdwy")
	return digits != "" && digits != s && strings.Trim(digits, "0123456789") == ""
}

// The checker itself: it must refuse what the rules must not contain.
func TestCheckPromQL(t *testing.T) {
	good := []string{
		"atlantis_lock_error_rate > 0.05",
		"sum(increase(atlantis_lock_deadlocks_detected_total[10m])) > 0",
		"histogram_quantile(0.99, sum by (le) (rate(atlantis_lock_wait_duration_seconds_bucket[5m])))",
		"min by (component) (atlantis_component_health) < 80",
	}
	for _, e := range good {
		if _, err := checkPromQL(e); err != nil {
			t.Errorf("checkPromQL(%q): %v", e, err)
		}
	}
	bad := []string{
		"atlantis_lock_errors > 0.05",                    // not a design metric
		"sum(atlantis_lock_error_rate > 0.05",            // unbalanced
		"rate(atlantis_lock_wait_duration_seconds[5m])",  // bare histogram
		"sum by (le) (atlantis_locks_held)",              // le without _bucket
		"sum by (pod_name) (atlantis_lock_events_total)", // label not in DESIGN
		"frobnicate(atlantis_locks_held)",                // unknown function
		"atlantis_locks_held > 1 > 2",                    // two comparisons
		"rate(atlantis_lock_events_total[5 minutes])",    // bad range
		"up == 0", // no atlantis metric
	}
	for _, e := range bad {
		if _, err := checkPromQL(e); err == nil {
			t.Errorf("checkPromQL(%q) accepted it", e)
		}
	}
}

// promRule is one rule of the rendered PrometheusRule.
type promRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func prometheusRules(t *testing.T, u *unstructured.Unstructured) map[string]promRule {
	t.Helper()
	groups, _, err := unstructured.NestedSlice(u.Object, "spec", "groups")
	if err != nil || len(groups) == 0 {
		t.Fatalf("PrometheusRule has no spec.groups: %v", err)
	}
	out := map[string]promRule{}
	for _, g := range groups {
		data, err := json.Marshal(g.(map[string]any)["rules"])
		if err != nil {
			t.Fatal(err)
		}
		var rules []promRule
		if err := json.Unmarshal(data, &rules); err != nil {
			t.Fatalf("PrometheusRule rules: %v", err)
		}
		for _, r := range rules {
			out[r.Alert] = r
		}
	}
	return out
}

func TestPrometheusRule(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "metrics: {prometheusRule: {enabled: true, queueDepthThreshold: 7, errorRateThreshold: 0.1}}")
	u := m.one(t, "PrometheusRule")
	if u.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("PrometheusRule apiVersion %s", u.GetAPIVersion())
	}
	rules := prometheusRules(t, u)
	// The original design's two rules keep its expressions; the thresholds are values.
	want := map[string]string{
		"HighLockErrorRate":    "atlantis_lock_error_rate > 0.1",
		"ComponentUnhealthy":   "atlantis_component_health < 80",
		"LockDeadlockDetected": "sum(increase(atlantis_lock_deadlocks_detected_total[10m])) > 0",
		"LockQueueTooLong":     "max(atlantis_lock_queue_depth) > 7",
		"LockEventsDropped":    "sum(increase(atlantis_lock_events_dropped_total[10m])) > 0",
	}
	for alert, expr := range want {
		r, ok := rules[alert]
		if !ok {
			t.Errorf("no alert %s", alert)
			continue
		}
		if r.Expr != expr {
			t.Errorf("%s expr %q, want %q", alert, r.Expr, expr)
		}
	}
	for alert, r := range rules {
		p, err := checkPromQL(r.Expr)
		if err != nil {
			t.Errorf("%s: expr %q: %v", alert, r.Expr, err)
		}
		if p.comparison == "" {
			t.Errorf("%s: expr %q has no comparison, so it would always fire", alert, r.Expr)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q", alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", alert)
		}
	}

	// The defaults are the original design's thresholds.
	def := prometheusRules(t, mustRender(t, "metrics: {prometheusRule: {enabled: true}}").one(t, "PrometheusRule"))
	if e := def["HighLockErrorRate"].Expr; e != "atlantis_lock_error_rate > 0.05" {
		t.Errorf("default HighLockErrorRate expr %q, want the original design's", e)
	}
}

// The dashboard is valid JSON, every panel query passes checkPromQL, and it shows
// what DESIGN.md asks for.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	m := mustRender(t, "grafanaDashboard: {enabled: true, namespace: monitoring}")
	cm := m.find("ConfigMap", "monitoring", fullName+"-dashboard")
	if cm == nil {
		t.Fatal("no dashboard ConfigMap in namespace monitoring")
	}
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard labels %v, want grafana_dashboard=1 for the Grafana sidecar", cm.GetLabels())
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(data["atlantis-lock-operator.json"]), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels")
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			if _, err := checkPromQL(target.Expr); err != nil {
				t.Errorf("panel %q: %q: %v", p.Title, target.Expr, err)
			}
			exprs = append(exprs, target.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, need := range []string{
		"atlantis_locks_held",
		"atlantis_lock_queue_depth",
		"histogram_quantile(0.99, sum by (le) (rate(atlantis_lock_wait_duration_seconds_bucket[5m])))",
		"histogram_quantile(0.99, sum by (le) (rate(atlantis_lock_hold_duration_seconds_bucket[5m])))",
		"histogram_quantile(0.5, sum by (le) (rate(atlantis_lock_wait_duration_seconds_bucket[5m])))",
		"atlantis_lock_health_score",
		"atlantis_lock_events_total",
		"atlantis_lock_events_dropped_total",
		"rate(atlantis_backend_request_duration_seconds_bucket[5m])",
		"atlantis_backend_request_errors_total",
		"atlantis_backend_circuit_state",
	} {
		if !strings.Contains(all, need) {
			t.Errorf("no dashboard query with %s", need)
		}
	}
}

// The metrics the alerts and the dashboard may use are registered by internal/metrics,
// with the labels they are grouped by, and the histograms are histograms: the chart
// queries series that exist.
func TestDesignMetricsAreRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(func() (int, int) { return 0, 0 })
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	// The API-call series have no series before the first call.
	m.ObserveCall(apicalls.Call{Verb: "update", Resource: "leases", Kind: apicalls.KindTimeout})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type series struct {
		kind   string // HISTOGRAM, GAUGE, COUNTER, ...
		labels []string
	}
	registered := map[string]series{}
	for _, mf := range families {
		s := series{kind: mf.GetType().String()}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(s.labels, l.GetName()) {
					s.labels = append(s.labels, l.GetName())
				}
			}
		}
		registered[mf.GetName()] = s
	}
	for name, labels := range designMetrics {
		s, ok := registered[name]
		if !ok {
			t.Errorf("%s (DESIGN.md) is not registered by internal/metrics", name)
			continue
		}
		for _, l := range labels {
			if !slices.Contains(s.labels, l) {
				t.Errorf("%s has labels %v, not %s", name, s.labels, l)
			}
		}
		if isHist := slices.Contains(designHistograms, name); isHist != (s.kind == "HISTOGRAM") {
			t.Errorf("%s is a %s; the chart queries it as histogram=%t", name, s.kind, isHist)
		}
	}
}
