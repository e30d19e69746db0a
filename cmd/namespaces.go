package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
)

// cacheOptions returns operator.CacheOptions restricted to the namespaces of the
// --watch-namespaces flag: a comma-separated list, or "" for every namespace. With a
// list, the operator watches (and so needs RBAC in) only those namespaces, which is
// what the Helm chart's watchNamespaces grants; LockRequests elsewhere are ignored.
func cacheOptions(watchNamespaces string) (cache.Options, error) {
	opts := operator.CacheOptions()
	if strings.TrimSpace(watchNamespaces) == "" {
		return opts, nil
	}
	opts.DefaultNamespaces = map[string]cache.Config{}
	for ns := range strings.SplitSeq(watchNamespaces, ",") {
		ns = strings.TrimSpace(ns)
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return cache.Options{}, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		opts.DefaultNamespaces[ns] = cache.Config{}
	}
	return opts, nil
}
