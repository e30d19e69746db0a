// Package chart tests the Helm chart charts/atlantis-lock-operator and the kustomize
// installer config/default by rendering them with the real tools from bin/ (helm and
// kubectl, built by `make tools`) and checking the objects: security contexts, RBAC
// against the rules generated from the +kubebuilder:rbac markers, the configuration file
// loaded by internal/config, CRDs, alert expressions and the values schema. The tests
// live in _test.go files; this file only names the package.
package chart
