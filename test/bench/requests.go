package main

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runatlantis/atlantis-lock-operator/internal/apicalls"
)

// requestCounter counts and times the requests a REST client sends, by verb and
// resource, such as "update lockrequests/status".
type requestCounter struct {
	mu sync.Mutex
	// took holds the latency of every request of each kind, in the order they
	// finished; a watch counts until its headers come back.
	took map[string][]time.Duration
}

func newRequestCounter() *requestCounter {
	return &requestCounter{took: map[string][]time.Duration{}}
}

// wrap is a rest.Config WrapTransport that counts and times every request.
func (c *requestCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(req)
		c.add(requestKind(req), time.Since(start))
		return resp, err
	})
}

func (c *requestCounter) add(kind string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.took[kind] = append(c.took[kind], took)
}

// snapshot returns how many requests of each kind were sent so far.
func (c *requestCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := make(map[string]int, len(c.took))
	for kind, took := range c.took {
		counts[kind] = len(took)
	}
	return counts
}

// since returns what was sent after the snapshot before: counts and latencies.
func (c *requestCounter) since(before map[string]int) requestDelta {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := requestDelta{Counts: map[string]int{}, Latency: map[string]Summary{}}
	for _, kind := range slices.Sorted(maps.Keys(c.took)) {
		took := c.took[kind][before[kind]:]
		if len(took) == 0 || strings.HasPrefix(kind, "watch ") {
			continue
		}
		d.Counts[kind] = len(took)
		d.Latency[kind] = Summarize(took)
		if isWrite(kind) {
			d.Writes += len(took)
		} else {
			d.Reads += len(took)
		}
	}
	return d
}

// roundTripperFunc is a function that is an http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// requestKind names a Kubernetes API request as "verb resource[/subresource]", as
// the operator's own metrics do (apicalls.Describe): "update lockrequests/status".
func requestKind(req *http.Request) string {
	verb, resource := apicalls.Describe(req)
	return verb + " " + resource
}

// isWrite reports whether a requestKind changes state.
func isWrite(kind string) bool {
	verb, _, _ := strings.Cut(kind, " ")
	switch verb {
	case "create", "update", "patch", "delete":
		return true
	}
	return false
}

// requestDelta is what one phase cost in API requests.
type requestDelta struct {
	// Counts are the requests by kind sent during the phase.
	Counts map[string]int `json:"counts"`
	// Latency is how long the API server took to answer them, by kind.
	Latency map[string]Summary `json:"latency"`
	// Writes and Reads sum them (reads: get and list; watches are not counted).
	Writes int `json:"writes"`
	Reads  int `json:"reads"`
}
