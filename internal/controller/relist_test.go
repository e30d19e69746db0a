package controller_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/config"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
)

// TestAProjectLockWrittenWhileItsWatchIsDownGoesWithItsKey: the operator writes a
// key's ProjectLock while its watch of ProjectLocks is down (the API server
// restarted, say), then the key goes idle before the watch is back. The cache
// has never shown the ProjectLock, and the list that brings the watch back
// brings it at the version the operator wrote, an echo that wakes nobody: the
// decision that made the key idle must find the ProjectLock past the cache and
// delete it with the Lease, or it stays behind with nothing to show.
func TestAProjectLockWrittenWhileItsWatchIsDownGoesWithItsKey(t *testing.T) {
	ns := isolatedNamespace(t)
	watches := &watchStaller{resource: "projectlocks"}
	restCfg := rest.CopyConfig(env.Config)
	restCfg.Wrap(watches.wrap)
	startIsolatedOperatorOn(t, restCfg, ns, clock.RealClock{}, orchestrator.DefaultConfig(),
		func(c *config.Config) { c.ProjectLockDelay, c.IdleLeaseRetention = 0, 0 })

	// A first lock shows that the controller runs, its watches all synced.
	first := makeLR(ns, "first").path("first").pull(3).create(t)
	waitLeaseHolder(t, ns, lockNameOf(first), first)
	watches.stall()
	t.Cleanup(watches.resume) // also when the test fails: the cleanup needs the watch
	holder := makeLR(ns, "holder").path("relist").pull(1).create(t)
	name := lockNameOf(holder)
	waitLeaseHolder(t, ns, name, holder)
	eventually(t, "the ProjectLock shows the hold", func() error {
		pl, err := getPL(ns, name)
		if err != nil {
			return err
		}
		if pl.Status.Holder == nil || pl.Status.Holder.Request != holder.Name {
			return fmt.Errorf("holder %+v, want request %s", pl.Status.Holder, holder.Name)
		}
		return nil
	})
	deleteObj(t, holder)
	eventually(t, "the idle key's Lease and ProjectLock are deleted while the watch is still down", func() error {
		if _, err := getLease(ns, name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the Lease: %w", err)
		}
		if _, err := getPL(ns, name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the ProjectLock is still there (%w)", err)
		}
		return nil
	})
	if watches.ended() == 0 {
		t.Fatal("the stall ended no watch of ProjectLocks: the test did not test a lagging cache")
	}
	watches.resume()

	// The key works as before once the watch is back.
	again := makeLR(ns, "again").path("relist").pull(2).create(t)
	waitLeaseHolder(t, ns, name, again)
}

// watchStaller holds back the watches of one resource as a restarting API server
// does: stall ends the open ones and holds back those that follow; resume answers
// those with 410 Gone (the watch cache of the new API server does not go back to
// their resourceVersion), so the informer lists again, and lets later ones
// through.
type watchStaller struct {
	resource string

	mu      sync.Mutex
	stalled bool
	resumed chan struct{}
	open    []io.Closer
	endedN  int
}

func (s *watchStaller) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("watch") != "true" || !strings.HasSuffix(req.URL.Path, "/"+s.resource) {
			return next.RoundTrip(req)
		}
		s.mu.Lock()
		stalled, resumed := s.stalled, s.resumed
		s.mu.Unlock()
		if stalled {
			select {
			case <-resumed:
				return goneResponse(req), nil
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stalled {
			_ = resp.Body.Close() // opened as the stall began: ended with the others
			s.endedN++
		} else {
			s.open = append(s.open, resp.Body)
		}
		return resp, nil
	})
}

// stall ends the open watches and holds back new ones until resume.
func (s *watchStaller) stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled, s.resumed = true, make(chan struct{})
	for _, body := range s.open {
		_ = body.Close()
	}
	s.endedN += len(s.open)
	s.open = nil
}

// resume answers the watches held back with 410 Gone and lets new ones through.
func (s *watchStaller) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stalled {
		return
	}
	s.stalled = false
	close(s.resumed)
}

// ended returns how many open watches the stall ended.
func (s *watchStaller) ended() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endedN
}

// goneResponse is the API server's answer to a watch from a resourceVersion it no
// longer has.
func goneResponse(req *http.Request) *http.Response {
	body, err := json.Marshal(&metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired,
		Message: "too old resource version",
	})
	if err != nil {
		panic(errors.Join(errors.New("encoding a Status"), err))
	}
	return &http.Response{
		StatusCode: http.StatusGone, Status: "410 Gone", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(bytes.NewReader(body)),
		Request: req,
	}
}

// roundTripper is an http.RoundTripper of a function.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
