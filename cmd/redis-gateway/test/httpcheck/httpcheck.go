// Package httpcheck is the HTTP request of the gateway's tests: make it, read the
// body, fail the test on an unexpected status.
package httpcheck

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// Do makes a request with c and returns the body; the test fails (and stops) on an
// error or a status other than want.
func Do(ctx context.Context, t testing.TB, c *http.Client, method, url string, want int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, url, res.Status, want, data)
	}
	return string(data)
}
