package lockclient

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runatlantis/atlantis-lock-operator/internal/scheme"
)

// Defaults of the Options.
const (
	// DefaultDecisionTimeout bounds how long TryLock waits for the operator's first
	// decision about a new request. The operator decides in milliseconds; a request
	// still undecided after this long means that no operator is running.
	DefaultDecisionTimeout = 30 * time.Second
	// DefaultCleanupTimeout bounds the deletions the client makes after the caller's
	// context has ended (withdrawing a request nobody waits for any more).
	DefaultCleanupTimeout = 10 * time.Second
	// DefaultFieldManager is the field manager of the client's writes.
	DefaultFieldManager = "atlantis-lock-client"
)

// Client takes, inspects and releases locks in one namespace. It is safe for
// concurrent use.
type Client struct {
	c               client.WithWatch
	namespace       string
	clock           clock.PassiveClock
	decisionTimeout time.Duration
	cleanupTimeout  time.Duration
	fieldManager    string
}

// Option changes a Client's defaults.
type Option func(*Client)

// WithClock sets the clock Renew reads the renewal time from (default: the real
// clock). The operator measures expiry from when it observes a renewal, so this
// clock only needs to move forward.
func WithClock(clk clock.PassiveClock) Option {
	return func(c *Client) { c.clock = clk }
}

// WithDecisionTimeout sets how long TryLock waits for the operator's first decision
// (default DefaultDecisionTimeout).
func WithDecisionTimeout(d time.Duration) Option {
	return func(c *Client) { c.decisionTimeout = d }
}

// WithCleanupTimeout sets how long a withdrawal may take after the caller's context
// has ended (default DefaultCleanupTimeout).
func WithCleanupTimeout(d time.Duration) Option {
	return func(c *Client) { c.cleanupTimeout = d }
}

// WithFieldManager sets the field manager recorded for the client's writes (default
// DefaultFieldManager), so that `kubectl get lr -o yaml --show-managed-fields` tells
// which program made a request.
func WithFieldManager(name string) Option {
	return func(c *Client) { c.fieldManager = name }
}

// New returns a client for LockRequests in namespace. c must be able to watch
// (client.WithWatch, for example client.NewWithWatch(cfg, client.Options{Scheme:
// NewScheme()})), since every wait is on a watch.
func New(c client.WithWatch, namespace string, opts ...Option) *Client {
	cl := &Client{
		c:               c,
		namespace:       namespace,
		clock:           clock.RealClock{},
		decisionTimeout: DefaultDecisionTimeout,
		cleanupTimeout:  DefaultCleanupTimeout,
		fieldManager:    DefaultFieldManager,
	}
	for _, o := range opts {
		o(cl)
	}
	return cl
}

// NewScheme returns a scheme with the built-in kinds and locking.runatlantis.io/v1alpha1,
// for the client.WithWatch that New takes.
func NewScheme() *runtime.Scheme { return scheme.New() }

// Namespace returns the namespace the client works in.
func (c *Client) Namespace() string { return c.namespace }
