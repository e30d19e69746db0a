package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProjectLockSpec is the lock key a ProjectLock stands for. It is immutable.
//
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type ProjectLockSpec struct {
	// project is the locked Atlantis project.
	// +required
	Project ProjectRef `json:"project"`

	// workspace is the locked Terraform workspace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=90
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`
	Workspace string `json:"workspace"`
}

// LockHolder is the request that holds a lock.
type LockHolder struct {
	// request is the name of the holding LockRequest.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Request string `json:"request"`

	// owner is the holding owner: "repository#pull" or a username.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Owner string `json:"owner"`

	// pull is the holder's pull request, when it has one.
	// +optional
	Pull *PullRequestRef `json:"pull,omitempty"`

	// user is the holder's username.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	User string `json:"user,omitempty"`

	// acquiredTime is when the lock was granted.
	// +optional
	AcquiredTime *metav1.Time `json:"acquiredTime,omitempty"`

	// expiresTime is when the hold expires unless renewed; set only with a ttl.
	// +optional
	ExpiresTime *metav1.Time `json:"expiresTime,omitempty"`

	// fencingToken of the grant; see LockRequest status.fencingToken.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	FencingToken string `json:"fencingToken,omitempty"`
}

// QueueEntry is one waiting LockRequest.
type QueueEntry struct {
	// request is the name of the waiting LockRequest.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Request string `json:"request"`

	// owner is the waiting owner: "repository#pull" or a username.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Owner string `json:"owner"`

	// pull is the waiter's pull request number, when it has one.
	// +optional
	Pull int32 `json:"pull,omitempty"`

	// user is the waiter's username.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	User string `json:"user,omitempty"`

	// priority of the waiting request.
	// +optional
	Priority Priority `json:"priority,omitempty"`

	// enqueuedTime is when the request joined the queue.
	// +optional
	EnqueuedTime *metav1.MicroTime `json:"enqueuedTime,omitempty"`
}

// MaxQueueEntries bounds status.queue of a ProjectLock; status.queueLength counts
// every waiter.
const MaxQueueEntries = 50

// ProjectLockStatus shows who holds a lock key and who waits for it.
type ProjectLockStatus struct {
	// lockKey is the lock key in Atlantis's format.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LockKey string `json:"lockKey,omitempty"`

	// holder is the request that holds the lock, if any.
	// +optional
	Holder *LockHolder `json:"holder,omitempty"`

	// queue lists the first waiters in the order they will be served.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	Queue []QueueEntry `json:"queue,omitempty"`

	// queueLength is the number of waiting requests, which may exceed the entries
	// listed in queue.
	// +optional
	QueueLength int32 `json:"queueLength,omitempty"`

	// leaseName is the coordination.k8s.io Lease that grants the lock.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LeaseName string `json:"leaseName,omitempty"`

	// conditions: Locked is True while an owner holds the key.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ProjectLock is the lock of one Atlantis project and workspace. The operator creates
// it when the first LockRequest for the key arrives and deletes it when nobody holds
// or waits for the key. Deleting it yourself force-unlocks the key: the holder's
// request fails with reason Revoked and the next waiter is served.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pl,categories=atlantis
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.project.repository`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.project.path`
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.spec.workspace`
// +kubebuilder:printcolumn:name="Holder",type=integer,JSONPath=`.status.holder.pull.number`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.status.holder.user`
// +kubebuilder:printcolumn:name="Queue",type=integer,JSONPath=`.status.queueLength`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.project.name`,priority=10
// +kubebuilder:printcolumn:name="Request",type=string,JSONPath=`.status.holder.request`,priority=10
type ProjectLock struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the lock key.
	// +required
	Spec ProjectLockSpec `json:"spec"`

	// status shows the holder and the queue.
	// +optional
	Status ProjectLockStatus `json:"status,omitempty"`
}

// ProjectLockList is a list of ProjectLocks.
//
// +kubebuilder:object:root=true
type ProjectLockList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ProjectLocks.
	Items []ProjectLock `json:"items"`
}
