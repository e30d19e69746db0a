package controller_test

import (
	"context"
	"slices"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/internal/indexes"
	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// TestLockRequestsByLockName: a List with a namespace and the lock-name field
// selector finds exactly the requests of that key in that namespace, through the
// informer index indexes.Setup adds, both with a cache of every namespace and
// with one limited to some (watch_namespaces), whose informers are per namespace.
func TestLockRequestsByLockName(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	a1 := makeLR(ns, "a1").repo("acme/infra").path("a").pull(1).create(t)
	makeLR(ns, "a2").repo("acme/infra").path("a").pull(2).create(t)
	makeLR(ns, "b1").repo("acme/infra").path("b").pull(3).create(t)
	makeLR(other, "a3").repo("acme/infra").path("a").pull(4).create(t)
	lock := lockNameOf(a1)

	for name, namespaces := range map[string]map[string]cache.Config{
		"every namespace":  nil,
		"watch_namespaces": {ns: {}, other: {}},
	} {
		t.Run(name, func(t *testing.T) {
			opts := operator.CacheOptions()
			opts.Scheme = scheme.New()
			opts.DefaultNamespaces = namespaces
			c, err := cache.New(env.Config, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := indexes.Setup(ctx, c); err != nil {
				t.Fatal(err)
			}
			go func() { _ = c.Start(ctx) }()
			if !c.WaitForCacheSync(ctx) {
				t.Fatal("the cache did not sync")
			}
			for _, tc := range []struct {
				namespace string
				want      []string
			}{{ns, []string{"a1", "a2"}}, {other, []string{"a3"}}} {
				var list lockingv1alpha1.LockRequestList
				if err := c.List(ctx, &list, client.InNamespace(tc.namespace),
					client.MatchingFields{indexes.LockRequestLockName: lock}); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, lr := range list.Items {
					got = append(got, lr.Name)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("requests of %s in %s: %v; want %v", lock, tc.namespace, got, tc.want)
				}
			}
		})
	}
}
