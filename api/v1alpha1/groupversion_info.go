// Package v1alpha1 contains the API of the atlantis-lock-operator: the LockRequest a
// caller creates to ask for an Atlantis project/workspace lock, and the ProjectLock the
// operator keeps for each lock key.
//
// +kubebuilder:object:generate=true
// +groupName=locking.runatlantis.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "locking.runatlantis.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
