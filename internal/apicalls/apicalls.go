// Package apicalls observes every call the operator makes to the Kubernetes API
// server. A transport wrapper on the manager's rest.Config times each request, names
// its verb and resource, classifies a failure by kind, and hands the Call to the
// observers: the atlantis_backend_* metrics, the percentiles of /metrics/atlantis,
// the circuit breaker and the backend_error events.
//
// Callers mark what a call is for through its context: OnDecisionPath for the calls
// of a lock decision (what the circuit breaker guards), FailuresReported for calls
// whose failures the orchestrator reports itself (so that they are not reported
// twice).
package apicalls

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/latency"
)

// Kind is what kind of failure a call met, or KindNone.
type Kind string

// The kinds of failure. Not found (404), conflict (409) and gone (410) are answers,
// not failures: a compare-and-swap that lost, an object already deleted, a watch to
// resume.
const (
	// KindNone: the API server answered.
	KindNone Kind = ""
	// KindTimeout: the call ran out of time (504, the server's timeout status, or
	// the caller's deadline).
	KindTimeout Kind = "timeout"
	// KindUnavailable: the API server could not be reached or could not serve
	// (502, 503, connection refused or reset).
	KindUnavailable Kind = "unavailable"
	// KindServerError: the API server failed (500 and other 5xx).
	KindServerError Kind = "server_error"
	// KindThrottled: the API server asked the caller to slow down (429).
	KindThrottled Kind = "throttled"
	// KindDenied: authentication or authorization refused the call (401, 403).
	KindDenied Kind = "denied"
	// KindClientError: any other 4xx: a request the API server will never accept.
	KindClientError Kind = "client_error"
)

// Kinds lists every failure kind, for metric labels.
func Kinds() []Kind {
	return []Kind{KindTimeout, KindUnavailable, KindServerError, KindThrottled, KindDenied, KindClientError}
}

// Call is one request to the API server.
type Call struct {
	// Verb is get, list, watch, create, update, patch, delete or deletecollection;
	// for a path that is no resource (/readyz, discovery), the HTTP method.
	Verb string
	// Resource is the resource, with its subresource: "leases", "lockrequests/status";
	// "nonresource" for paths such as /readyz and discovery.
	Resource string
	// Start is when the call was sent, on the recorder's clock.
	Start time.Time
	// Duration is the time to the response's headers (for a watch, to its start).
	Duration time.Duration
	// Code is the HTTP status, 0 when no response came.
	Code int
	// Kind says how the call failed, KindNone when it did not.
	Kind Kind
	// Err describes the failure.
	Err error
	// DecisionPath is true for the calls of a lock decision (OnDecisionPath).
	DecisionPath bool
	// Reported is true when the caller reports its failures itself
	// (FailuresReported).
	Reported bool
}

// Failed reports whether the call failed.
func (c Call) Failed() bool { return c.Kind != KindNone }

// Transient reports whether the call failed because the API server could not serve
// it now (timeout, unavailable, server error, throttled): what a circuit breaker
// counts. A denied or invalid request fails the same way every time; backing off
// does not cure it.
func (c Call) Transient() bool {
	switch c.Kind {
	case KindTimeout, KindUnavailable, KindServerError, KindThrottled:
		return true
	}
	return false
}

// String names the call for messages: "PUT lockrequests/status".
func (c Call) String() string { return c.Verb + " " + c.Resource }

// Observer receives every call. It is called on the calling goroutine, after the
// response's headers arrived: it must be quick.
type Observer interface {
	ObserveCall(Call)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Call)

// ObserveCall implements Observer.
func (f ObserverFunc) ObserveCall(c Call) { f(c) }

type contextKey int

const (
	decisionPathKey contextKey = iota
	reportedKey
)

// OnDecisionPath marks the calls made with ctx as those of a lock decision.
func OnDecisionPath(ctx context.Context) context.Context {
	return context.WithValue(ctx, decisionPathKey, true)
}

// FailuresReported marks the calls made with ctx as reported by their caller when
// they fail.
func FailuresReported(ctx context.Context) context.Context {
	return context.WithValue(ctx, reportedKey, true)
}

// Recorder wraps transports and hands their calls to its observers, and keeps the
// latency percentiles of each verb and resource. Observers may be added after the
// transports were wrapped (the manager is made before the operator that observes
// it). The zero value is not usable: call NewRecorder.
type Recorder struct {
	clk clock.PassiveClock

	mu        sync.RWMutex
	observers []Observer

	windowsMu sync.Mutex
	windows   map[string]*latency.Window
}

// NewRecorder returns a Recorder that times calls with clk.
func NewRecorder(clk clock.PassiveClock) *Recorder {
	return &Recorder{clk: clk, windows: map[string]*latency.Window{}}
}

// AddObserver adds an observer of every call made from now on.
func (r *Recorder) AddObserver(o Observer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observers = append(r.observers, o)
}

// Wrap wraps a transport: give it to rest.Config.Wrap.
func (r *Recorder) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{next: rt, r: r}
}

// Percentiles returns, per "verb resource", the latency percentiles of the calls
// sent at or after from; watches are left out (their time is their whole life).
func (r *Recorder) Percentiles(from time.Time) map[string]latency.Percentiles {
	r.windowsMu.Lock()
	defer r.windowsMu.Unlock()
	out := make(map[string]latency.Percentiles, len(r.windows))
	for key, w := range r.windows {
		if p := w.Since(from); p.Count > 0 {
			out[key] = p
		}
	}
	return out
}

func (r *Recorder) observe(c Call) {
	if c.Verb != "watch" {
		r.windowsMu.Lock()
		w := r.windows[c.String()]
		if w == nil {
			w = &latency.Window{}
			r.windows[c.String()] = w
		}
		w.Add(c.Start, c.Duration)
		r.windowsMu.Unlock()
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.observers {
		o.ObserveCall(c)
	}
}

type roundTripper struct {
	next http.RoundTripper
	r    *Recorder
}

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	start := t.r.clk.Now()
	resp, err := t.next.RoundTrip(req)
	verb, resource := Describe(req)
	ctx := req.Context()
	c := Call{
		Verb: verb, Resource: resource, Start: start, Duration: t.r.clk.Since(start),
		DecisionPath: ctx.Value(decisionPathKey) == true, Reported: ctx.Value(reportedKey) == true,
	}
	switch {
	case err != nil:
		c.Kind, c.Err = kindOfError(err), err
	default:
		c.Code = resp.StatusCode
		c.Kind = kindOfStatus(resp.StatusCode)
		if c.Kind != KindNone {
			c.Err = fmt.Errorf("the API server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
	}
	t.r.observe(c)
	return resp, err
}

// kindOfStatus classifies an HTTP status.
func kindOfStatus(code int) Kind {
	switch {
	case code < 400, code == http.StatusNotFound, code == http.StatusConflict, code == http.StatusGone:
		return KindNone
	case code == http.StatusGatewayTimeout:
		return KindTimeout
	case code == http.StatusBadGateway, code == http.StatusServiceUnavailable:
		return KindUnavailable
	case code == http.StatusTooManyRequests:
		return KindThrottled
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return KindDenied
	case code >= 500:
		return KindServerError
	}
	return KindClientError
}

// kindOfError classifies a transport error: the caller's deadline or a network
// timeout is a timeout, a cancelled call is none (the caller gave up, as on
// shutdown), anything else means the API server could not be reached.
func kindOfError(err error) Kind {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return KindNone
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	}
	return KindUnavailable
}

// Describe names a request's verb and resource from its method and path, as the
// API server's request info does: /api/v1/namespaces/ns/leases/x is get leases,
// /apis/g/v/namespaces/ns/lockrequests/x/status with PUT is update
// lockrequests/status.
func Describe(req *http.Request) (verb, resource string) {
	segs := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var rest []string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		rest = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		rest = segs[3:]
	}
	if len(rest) == 0 {
		return req.Method, "nonresource"
	}
	if rest[0] == "namespaces" && len(rest) >= 3 && rest[2] != "status" && rest[2] != "finalize" {
		rest = rest[2:] // a namespaced resource
	}
	resource = rest[0]
	named := len(rest) >= 2
	if len(rest) >= 3 {
		resource += "/" + rest[2]
	}
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource
}
