package localcluster

import (
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// crdReadyTimeout bounds the wait for new CRDs to be served; establishing a CRD takes
// well under a second on an idle API server, more on a busy shared one.
const crdReadyTimeout = 30 * time.Second

// InstallCRDs creates the CustomResourceDefinitions found in the YAML files of the
// given directories (updating those that exist) in the cluster cfg points to, and
// waits until the API server serves them. It works for a Cluster (pass its Config)
// and for any existing cluster. It returns the names of the CRDs; a missing directory
// is an error, a directory without CRDs is not.
func InstallCRDs(cfg *rest.Config, dirs ...string) ([]string, error) {
	crds, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              dirs,
		ErrorIfPathMissing: true,
		MaxTime:            crdReadyTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("localcluster: installing CRDs from %v: %w", dirs, err)
	}
	names := make([]string, 0, len(crds))
	for _, crd := range crds {
		names = append(names, crd.Name)
	}
	return names, nil
}
