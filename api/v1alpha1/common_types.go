package v1alpha1

// ProjectRef names an Atlantis project: a directory of a repository, optionally with
// the project name from atlantis.yaml. Together with a workspace it is a lock key.
type ProjectRef struct {
	// repository is the repository's full name as Atlantis knows it: "owner/repo",
	// or "group/subgroup/repo" on hosts with nested groups.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`
	Repository string `json:"repository"`

	// path is the project's directory relative to the repository root, cleaned:
	// "." for the root, "modules/vpc" for a subdirectory. No leading or trailing "/",
	// no "//", and no "." or ".." segments.
	// +optional
	// +kubebuilder:default="."
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="path must be relative to the repository root; it must not start with '/'"
	// +kubebuilder:validation:XValidation:rule="self == '.' || !self.matches('(^|/)[.][.](/|$)')",message="path must not contain '..'"
	// +kubebuilder:validation:XValidation:rule="self == '.' || (!self.endsWith('/') && !self.contains('//') && !self.matches('(^|/)[.](/|$)'))",message="path must be cleaned: no trailing '/', no '//' and no '.' segments; the repository root is '.'"
	Path string `json:"path,omitempty"`

	// name is the Atlantis project name from atlantis.yaml, if the project has one.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]*$`
	Name string `json:"name,omitempty"`
}

// PullRequestRef identifies the pull request a lock is taken for.
type PullRequestRef struct {
	// number is the pull (merge) request number.
	// +required
	// +kubebuilder:validation:Minimum=1
	Number int32 `json:"number"`

	// url links to the pull request.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url,omitempty"`

	// author is the user who opened the pull request.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Author string `json:"author,omitempty"`

	// headCommit is the commit the pull request pointed at when the lock was requested.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]*$`
	HeadCommit string `json:"headCommit,omitempty"`
}

// UserRef is the person (VCS user) on whose behalf a lock is taken.
type UserRef struct {
	// username is the VCS username.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Username string `json:"username"`

	// teams the user belongs to, as Atlantis reports them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=255
	Teams []string `json:"teams,omitempty"`
}

// Priority orders a key's queue: a waiter of higher priority is served first.
// +kubebuilder:validation:Enum=Low;Normal;High;Critical
type Priority string

// The priorities, lowest first.
const (
	PriorityLow      Priority = "Low"
	PriorityNormal   Priority = "Normal"
	PriorityHigh     Priority = "High"
	PriorityCritical Priority = "Critical"
)

// Rank orders priorities: a larger rank is served first. An unknown priority ranks
// as Normal, so that an object written by a newer API version still sorts sensibly.
func (p Priority) Rank() int {
	switch p {
	case PriorityLow:
		return 0
	case PriorityHigh:
		return 2
	case PriorityCritical:
		return 3
	default:
		return 1
	}
}
