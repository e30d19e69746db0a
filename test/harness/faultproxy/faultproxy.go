// Package faultproxy is a reverse proxy in front of the Kubernetes API server that
// answers chosen requests with an error instead of forwarding them: 409 Conflict
// or 500 Internal Server Error on Lease writes, for example. The fault tests point
// the operator at it to show that mutual exclusion holds and nothing is lost when
// the API server misbehaves.
package faultproxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rule makes the proxy fail matching requests.
type Rule struct {
	// Methods are the HTTP methods matched, such as PUT and POST; empty matches
	// every method.
	Methods []string
	// Path matches the request path, such as `/apis/coordination.k8s.io/v1/.*/leases`.
	Path *regexp.Regexp
	// Status is the HTTP status answered: 409 and 500 are what the API server
	// itself answers on a conflict or an internal error.
	Status int
	// Every fails one matching request in Every (1: all of them). The count is
	// per rule, so the pattern is deterministic.
	Every int
}

func (r Rule) matches(req *http.Request) bool {
	if len(r.Methods) > 0 && !slices.Contains(r.Methods, req.Method) {
		return false
	}
	return r.Path == nil || r.Path.MatchString(req.URL.Path)
}

// Proxy forwards to an API server, failing requests that match its rules.
type Proxy struct {
	target  *url.URL
	forward *httputil.ReverseProxy
	ln      net.Listener
	srv     *http.Server

	mu       sync.Mutex
	rules    []Rule
	seen     []int
	injected atomic.Int64
	passed   atomic.Int64
}

// Start listens on a free loopback port and forwards to the API server at target,
// trusting caData (PEM) for its certificate. Clients talk plain HTTP to URL, with
// their own credentials (a bearer token), which the proxy passes on. A client
// configured from a kubeconfig file sends no credentials to an http:// server
// (client-go reads them only for TLS): serve the Proxy, an http.Handler, over TLS
// instead (httptest.NewUnstartedServer(p) and StartTLS, as test/e2e does).
func Start(target *url.URL, caData []byte) (*Proxy, error) {
	pool := x509.NewCertPool()
	if len(caData) > 0 && !pool.AppendCertsFromPEM(caData) {
		return nil, fmt.Errorf("faultproxy: no certificate in the CA data")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{target: target, ln: ln}
	p.forward = httputil.NewSingleHostReverseProxy(target)
	p.forward.Transport = &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	// Watches stream: flush every write.
	p.forward.FlushInterval = -1
	// No timeouts: watches stay open for minutes.
	p.srv = &http.Server{Handler: p} //nolint:gosec // a loopback test proxy
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is where clients reach the proxy.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetRules replaces the rules; nil forwards everything.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
	p.seen = make([]int, len(rules))
}

// Injected counts the requests failed so far; Passed those forwarded.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Passed counts the requests forwarded so far.
func (p *Proxy) Passed() int64 { return p.passed.Load() }

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if status, ok := p.fault(req); ok {
		p.injected.Add(1)
		writeStatus(w, status, req)
		return
	}
	p.passed.Add(1)
	p.forward.ServeHTTP(w, req)
}

// fault decides whether req fails, and with what status.
func (p *Proxy) fault(req *http.Request) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.rules {
		if !r.matches(req) {
			continue
		}
		p.seen[i]++
		if every := max(r.Every, 1); p.seen[i]%every == 0 {
			return r.Status, true
		}
	}
	return 0, false
}

// writeStatus answers with a metav1.Status as the API server would, so that
// client-go decodes it into the matching apierrors (IsConflict, IsInternalError).
func writeStatus(w http.ResponseWriter, code int, req *http.Request) {
	reason := metav1.StatusReasonInternalError
	if code == http.StatusConflict {
		reason = metav1.StatusReasonConflict
	}
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     int32(code),
		Reason:   reason,
		Message:  fmt.Sprintf("faultproxy: injected %d on %s %s", code, req.Method, req.URL.Path),
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}
