package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestKind(t *testing.T) {
	tests := map[string]string{
		"POST /apis/locking.runatlantis.io/v1alpha1/namespaces/bench/projectlocks":           "create projectlocks",
		"PUT /apis/locking.runatlantis.io/v1alpha1/namespaces/bench/lockrequests/x/status":   "update lockrequests/status",
		"DELETE /apis/coordination.k8s.io/v1/namespaces/bench/leases/x":                      "delete leases",
		"GET /apis/locking.runatlantis.io/v1alpha1/namespaces/bench/lockrequests/x":          "get lockrequests",
		"GET /apis/locking.runatlantis.io/v1alpha1/namespaces/bench/lockrequests?watch=true": "watch lockrequests",
		"GET /apis/coordination.k8s.io/v1/leases?labelSelector=x":                            "list leases",
		"POST /api/v1/namespaces":              "create namespaces",
		"GET /api/v1/namespaces/bench":         "get namespaces",
		"POST /api/v1/namespaces/bench/events": "create events",
		"GET /version":                         "GET nonresource",
	}
	for in, want := range tests {
		method, url, _ := strings.Cut(in, " ")
		req := httptest.NewRequest(method, url, nil)
		if got := requestKind(req); got != want {
			t.Errorf("requestKind(%s) = %q, want %q", in, got, want)
		}
	}
}
