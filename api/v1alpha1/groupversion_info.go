// Package v1alpha1 contains the API of the atlantis-lock-operator: the LockRequest a
// caller creates to ask for an Atlantis project/workspace lock, and the ProjectLock the
// operator keeps for each lock key.
//
// +kubebuilder:object:generate=true
// +groupName=locking.runatlantis.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "locking.runatlantis.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme. It
	// depends on apimachinery only, so that clients can import this package cheaply.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &LockRequest{}, &LockRequestList{}, &ProjectLock{}, &ProjectLockList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
