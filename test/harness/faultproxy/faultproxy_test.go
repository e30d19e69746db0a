package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestProxyFailsMatchingRequestsAndForwardsTheRest(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream "+r.Method+" "+r.URL.Path)
	}))
	defer upstream.Close()
	target, err := url.Parse(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := startTrusting(t, target, upstream)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetRules(Rule{Methods: []string{http.MethodPut}, Path: regexp.MustCompile(`/leases/`), Status: http.StatusConflict, Every: 2})

	do := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, p.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	lease := "/apis/coordination.k8s.io/v1/namespaces/ns/leases/k"
	var codes []int
	for range 4 {
		code, _ := do(http.MethodPut, lease)
		codes = append(codes, code)
	}
	if want := []int{200, 409, 200, 409}; !slices.Equal(codes, want) {
		t.Errorf("PUT lease codes %v, want %v: every second one fails", codes, want)
	}
	if code, body := do(http.MethodGet, lease); code != 200 || body != "upstream GET "+lease {
		t.Errorf("GET = %d %q, want it forwarded", code, body)
	}
	do(http.MethodPut, lease) // the 5th passes, the 6th fails
	_, body := do(http.MethodPut, lease)
	if !strings.Contains(body, `"reason":"Conflict"`) || !strings.Contains(body, `"code":409`) {
		t.Errorf("injected answer %q is not a Status with reason Conflict", body)
	}
	if p.Injected() != 3 || p.Passed() != 4 {
		t.Errorf("injected %d, passed %d; want 3 and 4", p.Injected(), p.Passed())
	}
	p.SetRules()
	if code, _ := do(http.MethodPut, lease); code != 200 {
		t.Errorf("PUT after clearing the rules = %d", code)
	}
}

func startTrusting(t *testing.T, target *url.URL, upstream *httptest.Server) (*Proxy, error) {
	t.Helper()
	p, err := Start(target, nil)
	if err != nil {
		return nil, err
	}
	// The test server's certificate is self-signed: trust its own pool.
	p.forward.Transport = upstream.Client().Transport
	return p, nil
}
