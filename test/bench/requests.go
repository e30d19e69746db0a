package main

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
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

// requestKind names a Kubernetes API request as "VERB RESOURCE[/SUBRESOURCE]", with
// the verbs of RBAC: create, update, patch, delete, get, list, watch.
func requestKind(req *http.Request) string {
	resource, named := apiResource(req.URL.Path)
	var verb string
	switch req.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb + " " + resource
}

// apiResource returns the resource (with "/subresource") a path of the Kubernetes
// API names, and whether it names one object rather than a collection. Non-resource
// paths, such as /version, are one object named "other".
func apiResource(path string) (resource string, named bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:] // api, v1
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:] // apis, group, version
	default:
		return "other", true
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return "other", true
	case 1:
		return parts[0], false
	case 2:
		return parts[0], true
	default:
		return parts[0] + "/" + parts[2], true
	}
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
