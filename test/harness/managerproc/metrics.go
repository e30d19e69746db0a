package managerproc

import (
	"fmt"
	"io"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are scraped series by family name.
type Metrics map[string][]Series

// Series is one series of a family: its labels and its value. Counters, gauges and
// untyped series have a value; histograms and summaries give their sample count.
type Series struct {
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the Prometheus text format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	out := Metrics{}
	for name, family := range families {
		for _, m := range family.GetMetric() {
			s := Series{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.Value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.Value = m.GetGauge().GetValue()
			case m.Untyped != nil:
				s.Value = m.GetUntyped().GetValue()
			case m.Histogram != nil:
				s.Value = float64(m.GetHistogram().GetSampleCount())
			case m.Summary != nil:
				s.Value = float64(m.GetSummary().GetSampleCount())
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// Sum adds up the series of family name whose labels have the given values (name,
// value pairs; none matches every series). A family that is missing sums to 0.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for _, s := range m[name] {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && s.Labels[labels[i]] == labels[i+1]
		}
		if match {
			sum += s.Value
		}
	}
	return sum
}
