package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LockRequestSpec asks for the lock of one project and workspace. Every field is
// immutable once created, except renewTime. queueTimeout and ttl compare as
// durations, so that a client may spell "10m" as "10m0s" (as metav1.Duration does)
// when it writes the object back. The duration rules check the value only when it
// matches the pattern, so that a malformed duration is reported once, by the pattern.
//
// +kubebuilder:validation:XValidation:rule="self.project == oldSelf.project",message="project is immutable",fieldPath=".project"
// +kubebuilder:validation:XValidation:rule="self.workspace == oldSelf.workspace",message="workspace is immutable",fieldPath=".workspace"
// +kubebuilder:validation:XValidation:rule="has(self.pull) == has(oldSelf.pull) && (!has(self.pull) || self.pull == oldSelf.pull)",message="pull is immutable",fieldPath=".pull"
// +kubebuilder:validation:XValidation:rule="self.user == oldSelf.user",message="user is immutable",fieldPath=".user"
// +kubebuilder:validation:XValidation:rule="self.priority == oldSelf.priority",message="priority is immutable",fieldPath=".priority"
// +kubebuilder:validation:XValidation:rule="has(self.queueTimeout) == has(oldSelf.queueTimeout) && (!has(self.queueTimeout) || self.queueTimeout == oldSelf.queueTimeout || duration(self.queueTimeout) == duration(oldSelf.queueTimeout))",message="queueTimeout is immutable",fieldPath=".queueTimeout"
// +kubebuilder:validation:XValidation:rule="has(self.ttl) == has(oldSelf.ttl) && (!has(self.ttl) || self.ttl == oldSelf.ttl || duration(self.ttl) == duration(oldSelf.ttl))",message="ttl is immutable",fieldPath=".ttl"
type LockRequestSpec struct {
	// project is the Atlantis project to lock.
	// +required
	Project ProjectRef `json:"project"`

	// workspace is the Terraform workspace to lock.
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=90
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`
	Workspace string `json:"workspace,omitempty"`

	// pull is the pull request the lock is for. Leave it out for a manual lock.
	// The owner of the request is the pull ("repository#number") when set, and
	// user.username otherwise: requests of the owner that holds a key are granted
	// at once (re-entrant), as Atlantis lets a pull plan again.
	// +optional
	Pull *PullRequestRef `json:"pull,omitempty"`

	// user is who asks for the lock.
	// +required
	User UserRef `json:"user"`

	// priority orders the queue: Critical, High, Normal, then Low; within one
	// priority, the earlier request is served first.
	// +optional
	// +kubebuilder:default=Normal
	Priority Priority `json:"priority,omitempty"`

	// queueTimeout is the longest the request waits in the queue before it fails
	// with reason QueueTimeout, such as "10m" or "1h30m". "0s" fails at once with
	// reason Conflict when another owner holds the key (Atlantis's classic TryLock).
	// When unset, the operator's default queue timeout applies.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('0s')",message="queueTimeout must not be negative"
	QueueTimeout *metav1.Duration `json:"queueTimeout,omitempty"`

	// ttl makes the hold expire, with reason Expired, unless renewTime is moved
	// forward within ttl of the grant or the last renewal. When unset, the
	// operator's default ttl applies; when that is unset too, the hold lasts until
	// the request is deleted.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) > duration('0s')",message="ttl must be positive"
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// renewTime renews a hold that has a ttl: the holder sets it to the current time,
	// and the hold then expires ttl after the operator observed the renewal. It is
	// the only field that may change after creation.
	// +optional
	RenewTime *metav1.MicroTime `json:"renewTime,omitempty"`
}

// BlockedBy describes who holds the key a queued request waits for.
type BlockedBy struct {
	// request is the name of the holding LockRequest.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Request string `json:"request,omitempty"`

	// owner is the holding owner: "repository#pull" or a username.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Owner string `json:"owner,omitempty"`

	// pull is the holder's pull request number, when it has one.
	// +optional
	Pull int32 `json:"pull,omitempty"`

	// user is the holder's username.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	User string `json:"user,omitempty"`
}

// LockRequestStatus is what the operator decided about a LockRequest.
type LockRequestStatus struct {
	// conditions: Acquired (True while the lock is held; otherwise the reason says
	// why not) and Queued (True while waiting).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lockKey is the lock key in Atlantis's format:
	// "{repository}/{path}/{workspace}/{project name}".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LockKey string `json:"lockKey,omitempty"`

	// lockName is the name of the ProjectLock (and Lease) of the key.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LockName string `json:"lockName,omitempty"`

	// owner is the owner the request acts for: "repository#pull", or the username
	// for a manual lock.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Owner string `json:"owner,omitempty"`

	// position is the 1-based place in the queue while the request waits.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Position int32 `json:"position,omitempty"`

	// blockedBy is the current holder while the request waits.
	// +optional
	BlockedBy *BlockedBy `json:"blockedBy,omitempty"`

	// enqueuedTime is when the operator first saw the request waiting. With priority
	// and name it fixes the request's place in the queue, across operator restarts.
	// +optional
	EnqueuedTime *metav1.MicroTime `json:"enqueuedTime,omitempty"`

	// acquiredTime is when the request was granted the lock.
	// +optional
	AcquiredTime *metav1.Time `json:"acquiredTime,omitempty"`

	// expiresTime is when the hold expires unless renewed; set only with a ttl.
	// +optional
	ExpiresTime *metav1.Time `json:"expiresTime,omitempty"`

	// observedRenewTime is the spec.renewTime that expiresTime accounts for: when
	// spec.renewTime moves past it, the operator has a new renewal to observe.
	// +optional
	ObservedRenewTime *metav1.MicroTime `json:"observedRenewTime,omitempty"`

	// fencingToken is the resourceVersion of the Lease write that granted the lock:
	// a decimal integer that only grows, per key, across hand-offs and operator
	// restarts. Pass it to the systems you change under the lock so that they can
	// refuse a holder whose lock has since passed to someone else.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	FencingToken string `json:"fencingToken,omitempty"`

	// observedGeneration is the metadata.generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// LockRequest asks for the lock of one Atlantis project and workspace, for a pull
// request or a person. Creating it takes the lock or joins the key's queue; deleting
// it releases the lock (or leaves the queue) and hands the lock to the next waiter.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=lr,categories=atlantis
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.project.repository`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.project.path`
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.spec.workspace`
// +kubebuilder:printcolumn:name="Pull",type=integer,JSONPath=`.spec.pull.number`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.conditions[?(@.type=="Acquired")].reason`
// +kubebuilder:printcolumn:name="Position",type=integer,JSONPath=`.status.position`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.project.name`,priority=10
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.user.username`,priority=10
type LockRequest struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which lock is wanted, by whom, and how long to wait and hold.
	// +required
	Spec LockRequestSpec `json:"spec"`

	// status is what the operator decided.
	// +optional
	Status LockRequestStatus `json:"status,omitempty"`
}

// LockRequestList is a list of LockRequests.
//
// +kubebuilder:object:root=true
type LockRequestList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the LockRequests.
	Items []LockRequest `json:"items"`
}
