package lockclient

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// DefaultWorkspace is the workspace of a Request that names none, as in Atlantis.
const DefaultWorkspace = "default"

// Request says what lock is wanted, for whom.
type Request struct {
	// Project is the Atlantis project to lock: Repository ("owner/repo"), Path
	// (relative to the repository root; "" is the root ".") and Name (the
	// atlantis.yaml project name, or "").
	Project lockingv1alpha1.ProjectRef
	// Workspace is the Terraform workspace; "" is "default".
	Workspace string
	// Pull is the pull request the lock is for; nil for a manual lock. When set, the
	// pull is the owner of the request.
	Pull *lockingv1alpha1.PullRequestRef
	// User is who asks; Username is required, and is the owner of a manual lock.
	User lockingv1alpha1.UserRef
	// Priority orders the key's queue; "" is Normal.
	Priority lockingv1alpha1.Priority
	// QueueTimeout is the longest wait in the queue. nil: the operator's default;
	// 0: fail at once with reason Conflict when another owner holds the key.
	QueueTimeout *time.Duration
	// TTL makes the hold expire unless renewed (see Client.Renew). nil: the
	// operator's default (by default no expiry).
	TTL *time.Duration
	// Labels are added to the LockRequest's labels.
	Labels map[string]string
	// Annotations are added to the LockRequest's annotations.
	Annotations map[string]string
}

// Key returns the lock key the request asks for, with Atlantis's path cleaning and
// the default workspace applied.
func (r Request) Key() lockkey.Key {
	return lockkey.New(r.Project.Repository, r.Project.Path, r.workspace(), r.Project.Name)
}

// Owner returns who the request acts for, by the operator's rule
// (LockRequestSpec.Owner): "repository#number" for a pull, else the username.
func (r Request) Owner() string {
	if r.Pull != nil {
		return r.Project.Repository + "#" + strconv.Itoa(int(r.Pull.Number))
	}
	return r.User.Username
}

func (r Request) workspace() string {
	if r.Workspace == "" {
		return DefaultWorkspace
	}
	return r.Workspace
}

func (r Request) priority() lockingv1alpha1.Priority {
	if r.Priority == "" {
		return lockingv1alpha1.PriorityNormal
	}
	return r.Priority
}

// Validate reports the first field the API server would refuse, by name, so that a
// caller learns it without a round trip.
func (r Request) Validate() error {
	if err := r.Key().Validate(); err != nil {
		return fmt.Errorf("lock request: %w", err)
	}
	switch {
	case r.User.Username == "":
		return errors.New("lock request: user.username is required")
	case r.Pull != nil && r.Pull.Number < 1:
		return fmt.Errorf("lock request: pull.number must be at least 1, got %d", r.Pull.Number)
	case r.QueueTimeout != nil && *r.QueueTimeout < 0:
		return fmt.Errorf("lock request: queueTimeout must not be negative, got %s", *r.QueueTimeout)
	case r.TTL != nil && *r.TTL <= 0:
		return fmt.Errorf("lock request: ttl must be positive, got %s", *r.TTL)
	}
	switch r.priority() {
	case lockingv1alpha1.PriorityLow, lockingv1alpha1.PriorityNormal, lockingv1alpha1.PriorityHigh, lockingv1alpha1.PriorityCritical:
	default:
		return fmt.Errorf("lock request: priority %q must be one of Low, Normal, High, Critical", r.Priority)
	}
	return nil
}

// Lengths of the parts of a request name: short enough that `kubectl get lr` stays
// readable, well inside the 253 characters of an object name.
const (
	ownerSlugLength = 24
	keySlugLength   = 40
	nameHashLength  = 10
)

var nameHash = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// RequestName returns the LockRequest name of r: a readable slug of the owner
// ("pr42" for a pull, else the username) and of the key, and a hash of owner and key.
// It depends on nothing else, so a retried call finds the object the first call made,
// and two owners or two keys never share a name. The result is a DNS-1123 subdomain
// of at most 77 characters.
func RequestName(r Request) string {
	key := r.Key()
	owner := r.Owner()
	sum := sha256.Sum256([]byte(owner + "\x00" + key.String()))
	hash := nameHash.EncodeToString(sum[:])[:nameHashLength]
	ownerPart := "u-" + slug(r.User.Username, ownerSlugLength)
	if r.Pull != nil {
		ownerPart = "pr" + strconv.Itoa(int(r.Pull.Number))
	}
	parts := []string{ownerPart}
	if k := slug(key.String(), keySlugLength); k != "" {
		parts = append(parts, k)
	}
	return strings.Join(append(parts, hash), "-")
}

// slug keeps the lower-cased letters and digits of s, with one "-" for every run of
// anything else, and at most limit characters, never ending in "-".
func slug(s string, limit int) string {
	out := make([]byte, 0, limit)
	for _, r := range strings.ToLower(s) {
		if len(out) >= limit {
			break
		}
		alnum := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		switch {
		case alnum:
			out = append(out, byte(r))
		case len(out) > 0 && out[len(out)-1] != '-':
			out = append(out, '-')
		}
	}
	return strings.TrimRight(string(out), "-")
}

// object returns the LockRequest to create for r, whose client learns of its grant
// as notice says (a lockingv1alpha1.GrantNoticeAnnotation value).
func (c *Client) object(r Request, notice string) *lockingv1alpha1.LockRequest {
	key := r.Key()
	labels := map[string]string{}
	maps.Copy(labels, r.Labels)
	// The operator finds a key's requests from their spec; the label is for people:
	// `kubectl get lr -l locking.runatlantis.io/lock=NAME` lists one key's requests.
	labels[lockingv1alpha1.LockNameLabel] = key.ObjectName()
	lr := &lockingv1alpha1.LockRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c.namespace,
			Name:      RequestName(r),
			Labels:    labels,
		},
		Spec: lockingv1alpha1.LockRequestSpec{
			Project: lockingv1alpha1.ProjectRef{
				Repository: key.Repository,
				Path:       key.Path,
				Name:       key.ProjectName,
			},
			Workspace: key.Workspace,
			User:      *r.User.DeepCopy(),
			Pull:      r.Pull.DeepCopy(),
			Priority:  r.priority(),
		},
	}
	lr.Annotations = maps.Clone(r.Annotations)
	if lr.Annotations == nil {
		lr.Annotations = map[string]string{}
	}
	// This client learns of its grant from the key's Lease (leaseGrant), so the
	// operator may write the Acquired status late, or not at all for a short hold;
	// and a blocking Lock needs no Queued status either.
	lr.Annotations[lockingv1alpha1.GrantNoticeAnnotation] = notice
	if r.QueueTimeout != nil {
		lr.Spec.QueueTimeout = &metav1.Duration{Duration: *r.QueueTimeout}
	}
	if r.TTL != nil {
		lr.Spec.TTL = &metav1.Duration{Duration: *r.TTL}
	}
	return lr
}

// SpecMismatchError is returned when the object of a request's name exists (see
// RequestName) with a different policy: the spec is immutable, so the existing
// request must be unlocked before one with the new policy can be made.
type SpecMismatchError struct {
	// Name is the existing LockRequest's name.
	Name string
	// Field is the first differing spec field, such as "spec.ttl".
	Field string
	// Existing and Wanted are the field's values, as text.
	Existing, Wanted string
}

// Error names the object, the field and both values.
func (e *SpecMismatchError) Error() string {
	return fmt.Sprintf("LockRequest %s already exists for this owner and key with %s %s, not %s; unlock it first to ask with a different %s",
		e.Name, e.Field, e.Existing, e.Wanted, e.Field)
}

// compareSpec returns a *SpecMismatchError when existing is not the request want
// stands for: another owner or key (only a hash collision or a hand-made object of
// that name), or another priority, queueTimeout or ttl. Informational fields are not
// compared (see the package documentation).
func compareSpec(existing, want *lockingv1alpha1.LockRequest) error {
	e, w := &existing.Spec, &want.Spec
	mismatch := func(field, ev, wv string) error {
		return &SpecMismatchError{Name: existing.Name, Field: field, Existing: ev, Wanted: wv}
	}
	switch {
	case e.Key() != w.Key():
		return mismatch("key", strconv.Quote(e.Key().String()), strconv.Quote(w.Key().String()))
	case e.Owner() != w.Owner():
		return mismatch("owner", strconv.Quote(e.Owner()), strconv.Quote(w.Owner()))
	case e.Priority.Rank() != w.Priority.Rank():
		return mismatch("spec.priority", string(e.Priority), string(w.Priority))
	case !sameDuration(e.QueueTimeout, w.QueueTimeout):
		return mismatch("spec.queueTimeout", durationText(e.QueueTimeout), durationText(w.QueueTimeout))
	case !sameDuration(e.TTL, w.TTL):
		return mismatch("spec.ttl", durationText(e.TTL), durationText(w.TTL))
	}
	return nil
}

func sameDuration(a, b *metav1.Duration) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Duration == b.Duration
}

func durationText(d *metav1.Duration) string {
	if d == nil {
		return "unset (the operator's default)"
	}
	return d.Duration.String()
}
