package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

func TestCacheOptionsAllNamespaces(t *testing.T) {
	for _, flag := range []string{"", "  "} {
		opts, err := cacheOptions(flag)
		if err != nil {
			t.Fatalf("cacheOptions(%q): %v", flag, err)
		}
		if opts.DefaultNamespaces != nil {
			t.Errorf("cacheOptions(%q).DefaultNamespaces = %v, want nil (every namespace)", flag, opts.DefaultNamespaces)
		}
		if len(opts.ByObject) == 0 || opts.DefaultTransform == nil {
			t.Errorf("cacheOptions(%q) lost operator.CacheOptions' Lease selector or transform", flag)
		}
	}
}

func TestCacheOptionsWatchNamespaces(t *testing.T) {
	opts, err := cacheOptions("team-a, team-b,team-a")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cache.Config{"team-a": {}, "team-b": {}}
	if diff := cmp.Diff(want, opts.DefaultNamespaces); diff != "" {
		t.Errorf("DefaultNamespaces (-want +got):\n%s", diff)
	}
	// The Lease label selector of operator.CacheOptions must survive the merge.
	var leaseSelector string
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*coordinationv1.Lease); ok && by.Label != nil {
			leaseSelector = by.Label.String()
		}
	}
	if leaseSelector == "" {
		t.Error("the Lease label selector of operator.CacheOptions is gone")
	}
	if opts.DefaultTransform == nil {
		t.Error("the managedFields transform of operator.CacheOptions is gone")
	}
}

func TestCacheOptionsRejectsBadNamespace(t *testing.T) {
	for _, flag := range []string{"team-a,", "Team_A", "a,,b"} {
		_, err := cacheOptions(flag)
		if err == nil || !strings.Contains(err.Error(), "--watch-namespaces") {
			t.Errorf("cacheOptions(%q) = %v, want an error naming --watch-namespaces", flag, err)
		}
	}
}
