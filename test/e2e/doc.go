// Package e2e holds the end-to-end tests (build tag e2e; run them with
// `make test-e2e`, which builds the tools and bin/manager first). They check what a
// platform team gets from one `helm install`, on a real control plane:
//
//   - etcd, kube-apiserver and kube-controller-manager from bin/ (test/harness/localcluster),
//     so that owner-reference garbage collection and namespace deletion really happen;
//   - the chart charts/atlantis-lock-operator installed with its default values;
//   - two bin/manager processes run outside the cluster (no kubelet runs the pods),
//     with the Deployment's arguments and the ConfigMap's configuration file,
//     authenticated as the chart's ServiceAccount with a TokenRequest token, so that
//     the chart's RBAC is what is tested: a Forbidden in a manager's log fails the test;
//   - kubectl on the samples: queue, hand-off, force unlock, printer columns, Events;
//   - 50 pkg/lockclient clients over 10 keys, checked for mutual exclusion and fencing
//     (test/harness/lockcheck), while the leader is killed with SIGKILL and the standby
//     takes over; the survivor's metrics and /status are checked against what happened;
//   - namespace deletion and `helm uninstall` leave no LockRequest, ProjectLock or
//     Lease behind;
//   - TestFaults, on a control plane of its own: lock traffic while kube-apiserver is
//     restarted, etcd is stopped and started, the leader is killed three times, Lease
//     writes are answered with 500 and 409 (test/harness/faultproxy), a webhook endpoint
//     hangs and the event buffer holds one event; after each, mutual exclusion,
//     nothing lost, component health down and back, and the events counted
//     (docs/reliability.md, section Faults).
//
// The tests live in _test.go files behind the e2e build tag, so that `go test ./...`
// (make test) does not run them; this file only names the package.
package e2e
