package operator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpointsAnswer503UntilBound(t *testing.T) {
	var e Endpoints
	for path, h := range e.Handlers() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "enhanced_locking.enabled is false") {
			t.Errorf("GET %s before Bind = %d %q, want 503 saying why", path, rec.Code, rec.Body.String())
		}
	}
}
