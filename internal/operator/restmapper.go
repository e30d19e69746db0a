package operator

import (
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// MapperProvider returns the manager's RESTMapper: controller-runtime's, which
// discovers API groups as they are asked for, behind a memo of the mappings it has
// found for one kind at one version.
//
// A cache restricted to namespaces (the chart's watchNamespaces) maps each object's
// kind to its scope on every read, and controller-runtime's mapper looks through the
// mapper of every API group the cluster serves to answer: in an 8-client throughput
// run of make bench that was half of the lock reconciler's CPU outside its API calls
// (docs/benchmarks.md). The mapping of a kind at a version, its resource and scope,
// does not change while the kind is served (a CRD's names and scope are immutable),
// so once found it is kept; errors, and lookups without exactly one version, go to
// controller-runtime's mapper every time.
func MapperProvider(cfg *rest.Config, httpClient *http.Client) (meta.RESTMapper, error) {
	m, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return &memoMapper{RESTMapper: m}, nil
}

// memoMapper is a RESTMapper that keeps the mappings of RESTMapping with one
// version (see MapperProvider).
type memoMapper struct {
	meta.RESTMapper
	// mappings holds a *meta.RESTMapping per schema.GroupVersionKind.
	mappings sync.Map
}

// RESTMapping returns a copy of the kept mapping of gk at the one version given,
// else asks the mapper behind it, and keeps what it finds.
func (m *memoMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if len(versions) != 1 {
		return m.RESTMapper.RESTMapping(gk, versions...)
	}
	gvk := gk.WithVersion(versions[0])
	if kept, ok := m.mappings.Load(gvk); ok {
		mapping := *kept.(*meta.RESTMapping) // callers may change what they get
		return &mapping, nil
	}
	mapping, err := m.RESTMapper.RESTMapping(gk, versions...)
	if err != nil {
		return nil, err
	}
	kept := *mapping
	m.mappings.Store(gvk, &kept)
	return mapping, nil
}
