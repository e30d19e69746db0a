//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// testUninstall removes everything as docs/install.md says: the lock namespaces go
// while the operator still runs (the samples' namespace with a lock still held and
// ended requests in it), then the managers stop, the release is uninstalled and its
// namespace deleted. No LockRequest, ProjectLock or Lease may be left anywhere.
func (s *suite) testUninstall(t *testing.T) {
	start := time.Now()
	// kubectl delete namespace waits until the namespace is gone: the namespace
	// controller deletes the LockRequests and Leases, and the operator lets the
	// ProjectLocks' finalizers go.
	s.kubectl(t, "delete", "namespace", kubectlNamespace, trafficNamespace, "--timeout="+stepTimeout.String())
	t.Logf("lock namespaces deleted in %s", since(start))
	if out := s.kubectl(t, "get", "lockrequests,projectlocks", "--all-namespaces", "-o", "name"); out != "" {
		t.Errorf("left after deleting the lock namespaces:\n%s", out)
	}

	// The pods would go with the Deployment; the managers stop first, so that none
	// runs without the RBAC that helm uninstall removes.
	s.stopManagers(t)
	start = time.Now()
	s.helm(t, "uninstall", releaseName, "--namespace", releaseNamespace)
	s.kubectl(t, "delete", "namespace", releaseNamespace, "--timeout="+stepTimeout.String())
	t.Logf("helm uninstall and deletion of namespace %s in %s", releaseNamespace, since(start))

	if out := s.kubectl(t, "get", "lockrequests,projectlocks", "--all-namespaces", "-o", "name"); out != "" {
		t.Errorf("LockRequests or ProjectLocks left after uninstalling:\n%s", out)
	}
	leases := s.getTable(t, "get", "leases", "--all-namespaces")
	for _, r := range leases.rows {
		// kube-apiserver's identity Leases are the only ones a cluster without nodes has.
		if r["NAMESPACE"] != "kube-system" || !strings.HasPrefix(r["NAME"], "apiserver-") {
			t.Errorf("Lease %s/%s (holder %s) left after uninstalling", r["NAMESPACE"], r["NAME"], r["HOLDER"])
		}
	}
	selector := "app.kubernetes.io/instance=" + releaseName
	if out := s.kubectl(t, "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"); out != "" {
		t.Errorf("cluster-wide RBAC of the release left after uninstalling:\n%s", out)
	}
	if out := s.helm(t, "list", "--all-namespaces", "--short"); out != "" {
		t.Errorf("helm still lists releases: %s", out)
	}
}
