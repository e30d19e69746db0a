package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Delivery results: the values of the result label of
// atlantis_lock_webhook_deliveries_total, as given to WebhookOptions.Delivered.
const (
	// DeliverySuccess: the endpoint answered 2xx, on the first attempt or a retry.
	DeliverySuccess = "success"
	// DeliveryFailure: the delivery was given up: the endpoint refused it (a 4xx
	// other than 408 and 429, or a redirect), every retry failed, or the operator
	// shut down while it was being retried.
	DeliveryFailure = "failure"
	// DeliveryDropped: the event never reached the webhook because its queue
	// (queue_size) was full. Reported through WebhookDrops.
	DeliveryDropped = "dropped"
)

// DeliveryResults returns every delivery result, for metric help texts and for
// initialising the counter's series.
func DeliveryResults() []string {
	return []string{DeliverySuccess, DeliveryFailure, DeliveryDropped}
}

// The headers of a delivery, besides Content-Type and User-Agent.
const (
	// HeaderEvent carries the event type, such as "lock_acquired".
	HeaderEvent = "X-Atlantis-Lock-Event"
	// HeaderDelivery carries an ID unique to the event's delivery and the same on
	// every retry of it, so that a receiver can discard duplicates.
	HeaderDelivery = "X-Atlantis-Lock-Delivery"
	// HeaderSignature carries SignaturePrefix and the hex HMAC-SHA256 of the body,
	// keyed with the webhook's secret; absent when the webhook has no secret.
	HeaderSignature = "X-Atlantis-Lock-Signature"
	// SignaturePrefix names the signature's algorithm in HeaderSignature.
	SignaturePrefix = "sha256="
	// WebhookUserAgent is the User-Agent of every delivery.
	WebhookUserAgent = "atlantis-lock-operator"
)

// Webhook defaults, used when the matching WebhookOptions field is zero.
const (
	// DefaultWebhookTimeout bounds one delivery attempt.
	DefaultWebhookTimeout = 5 * time.Second
	// DefaultWebhookQueueSize is how many events may wait for delivery.
	DefaultWebhookQueueSize = 100
	// DefaultWebhookBackoffBase is the wait after the first failed attempt,
	// before jitter; each further failure doubles it.
	DefaultWebhookBackoffBase = time.Second
	// DefaultWebhookBackoffMax caps the doubled wait, before jitter.
	DefaultWebhookBackoffMax = 30 * time.Second
)

// responseDrainLimit bounds how much of a response body is read (and discarded)
// so that the connection can be reused; a larger body costs a new connection, not
// unbounded reading.
const responseDrainLimit = 64 << 10

// Secret is a webhook's HMAC-SHA256 signing key. A []byte can be assigned to it
// as is. It prints as "[redacted]" through fmt, logr and encoding/json, so that
// options or a webhook that end up in a log line or an error never show the key.
type Secret []byte

const redacted = "[redacted]"

// String implements fmt.Stringer without revealing the key.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer without revealing the key.
func (Secret) GoString() string { return redacted }

// MarshalLog implements logr.Marshaler without revealing the key.
func (Secret) MarshalLog() any { return redacted }

// MarshalJSON implements json.Marshaler without revealing the key.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// WebhookOptions configure a Webhook. URL, Events, Secret, Timeout, MaxRetries and
// QueueSize are the keys of one entry of the webhooks configuration list; the rest
// are for wiring and tests.
type WebhookOptions struct {
	// Name identifies the webhook as a bus subscriber, in logs and in errors; it
	// must be unique on the bus. Default: "webhook " and the URL without its
	// query, fragment and user information.
	Name string
	// URL is the absolute http or https URL events are POSTed to.
	URL string
	// Events are the event types sent; empty sends every type.
	Events []Type
	// Secret signs each body (HeaderSignature); empty sends unsigned deliveries.
	// Read it with config.Webhook.Secret; it never appears in logs or errors.
	Secret Secret
	// Timeout bounds one attempt, from sending the request to reading the
	// response. Default DefaultWebhookTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a failed attempt is retried; 0 never retries.
	MaxRetries int
	// QueueSize is how many events may wait for delivery; more are dropped and
	// counted. It is the webhook's bus subscription buffer. Default
	// DefaultWebhookQueueSize.
	QueueSize int
	// BackoffBase is the wait, before jitter, after the first failed attempt; it
	// doubles after each further failure. Default DefaultWebhookBackoffBase.
	BackoffBase time.Duration
	// BackoffMax caps the doubled wait, before jitter. Default
	// DefaultWebhookBackoffMax.
	BackoffMax time.Duration
	// Client sends the requests. Default: a client that does not follow
	// redirects (a redirect is a misconfigured URL, and following one would
	// resend the body elsewhere). Its Timeout, if any, applies on top of Timeout.
	Client *http.Client
	// Clock times attempts and backoff waits. Default clock.RealClock.
	Clock clock.WithDelayedExecution
	// Jitter returns a number in [0, 1) that spreads each backoff wait over its
	// upper half (equal jitter), so that webhooks failing together do not retry
	// together. Default math/rand/v2's Float64.
	Jitter func() float64
	// Delivered, if set, is called once per event with its DeliveryResults
	// value; WebhookDrops calls it with DeliveryDropped. It must not block.
	Delivered func(result string)
	// Log receives one V(1) line per failed attempt that will be retried. The
	// final failure is the handler's error, which the bus logs.
	Log logr.Logger
}

// Webhook delivers events as signed JSON POSTs, with a bounded queue, a time limit
// per attempt, and retries with capped exponential backoff and jitter. It is a
// Handler; Subscribe puts it on a bus with its own queue, so a slow or failing
// endpoint fills only that queue and never delays the operator.
type Webhook struct {
	opts WebhookOptions
	// display is the URL without query, fragment and user information: what
	// errors and logs show.
	display string
}

// NewWebhook checks opts and returns the webhook. Errors name the option.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook url %q is not an absolute http(s) URL", redactURL(opts.URL))
	}
	display := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if opts.Name == "" {
		opts.Name = "webhook " + display
	}
	fail := func(format string, args ...any) (*Webhook, error) {
		return nil, fmt.Errorf("%s: %s", opts.Name, fmt.Sprintf(format, args...))
	}
	for _, t := range opts.Events {
		if !t.Valid() {
			return fail("unknown event type %q in events", t)
		}
	}
	switch {
	case opts.Timeout < 0:
		return fail("timeout must be greater than 0, got %s", opts.Timeout)
	case opts.MaxRetries < 0:
		return fail("max_retries must not be negative, got %d", opts.MaxRetries)
	case opts.QueueSize < 0:
		return fail("queue_size must be greater than 0, got %d", opts.QueueSize)
	case opts.BackoffBase < 0:
		return fail("backoff base must not be negative, got %s", opts.BackoffBase)
	case opts.BackoffMax < 0:
		return fail("backoff max must not be negative, got %s", opts.BackoffMax)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultWebhookTimeout
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = DefaultWebhookQueueSize
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = DefaultWebhookBackoffBase
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = DefaultWebhookBackoffMax
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffBase)
	if opts.Client == nil {
		opts.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Jitter == nil {
		opts.Jitter = mathrand.Float64
	}
	if opts.Delivered == nil {
		opts.Delivered = func(string) {}
	}
	// Copies, so that the caller reusing its slices changes nothing here.
	opts.Secret = bytes.Clone(opts.Secret)
	opts.Events = append([]Type(nil), opts.Events...)
	return &Webhook{opts: opts, display: display}, nil
}

// Name is the webhook's subscriber name.
func (w *Webhook) Name() string { return w.opts.Name }

// String implements fmt.Stringer: the name, never the secret.
func (w *Webhook) String() string { return w.opts.Name }

// GoString implements fmt.GoStringer, so that %#v cannot print the secret either.
func (w *Webhook) GoString() string { return fmt.Sprintf("events.Webhook(%q)", w.opts.Name) }

// MarshalLog implements logr.Marshaler: the name, never the secret.
func (w *Webhook) MarshalLog() any { return w.opts.Name }

// Subscribe registers the webhook on b under its Name, for its event types, with a
// buffer of QueueSize events: its delivery queue. Give the bus an Observer made
// with WebhookDrops so that full-queue drops are counted as DeliveryDropped.
func (w *Webhook) Subscribe(b *Bus) (*Subscription, error) {
	return b.Subscribe(w.opts.Name, w, Filter{Types: w.opts.Events}, WithBufferSize(w.opts.QueueSize))
}

// HandleEvent delivers e: one POST, retried with backoff while the failure may
// pass (a network error, no response within Timeout, 408, 429 or 5xx) and retries
// remain. It reports the result to Delivered and returns nil on success. The
// error names the webhook and the last failure, not the event or its delivery
// ID (the bus's log line names the event type): the bus logs an error again only
// when its text changes, so an endpoint failing the same way is logged once. Cancelling ctx
// abandons the delivery, also in the middle of an attempt or a wait.
func (w *Webhook) HandleEvent(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		w.opts.Delivered(DeliveryFailure)
		return fmt.Errorf("%s: encoding the event: %w", w.opts.Name, err)
	}
	d := delivery{event: e.Type, id: newDeliveryID(), body: body}
	if len(w.opts.Secret) > 0 {
		d.signature = Sign(w.opts.Secret, body)
	}
	for attempt := 1; ; attempt++ {
		retryable, err := w.attempt(ctx, d)
		if err == nil {
			w.opts.Delivered(DeliverySuccess)
			return nil
		}
		var final error
		switch {
		case ctx.Err() != nil:
			final = w.abandoned(ctx, attempt)
		case !retryable:
			final = fmt.Errorf("%s: refused, not retried: %w", w.opts.Name, err)
		case attempt > w.opts.MaxRetries:
			final = fmt.Errorf("%s: not delivered after %d attempt(s): %w", w.opts.Name, attempt, err)
		default:
			wait, asked := w.retryWait(attempt, err)
			if wait > w.opts.BackoffMax {
				final = fmt.Errorf("%s: not retried: the endpoint asked to wait %s (Retry-After), longer than the longest backoff, %s: %w",
					w.opts.Name, asked, w.opts.BackoffMax, err)
				break
			}
			w.opts.Log.V(1).Info("webhook delivery attempt failed; retrying",
				"webhook", w.opts.Name, "delivery", d.id, "event", e.Type, "attempt", attempt,
				"retryIn", wait.String(), "error", err.Error())
			if !w.sleep(ctx, wait) {
				final = w.abandoned(ctx, attempt)
			}
		}
		if final != nil {
			w.opts.Delivered(DeliveryFailure)
			return final
		}
	}
}

func (w *Webhook) abandoned(ctx context.Context, attempts int) error {
	return fmt.Errorf("%s: abandoned after %d attempt(s), the operator is shutting down: %w", w.opts.Name, attempts, ctx.Err())
}

// delivery is what every attempt of one event's delivery sends.
type delivery struct {
	event     Type
	id        string
	body      []byte
	signature string
}

// errAttemptTimeout is the cause an attempt's context is cancelled with when its
// time is up, to tell a timeout from the operator shutting down.
var errAttemptTimeout = errors.New("attempt timed out")

// attempt POSTs d once. It returns nil on a 2xx response; otherwise the error and
// whether trying again may help.
func (w *Webhook) attempt(ctx context.Context, d delivery) (retryable bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The attempt's time limit runs on the injected clock, so tests step it.
	timer := w.opts.Clock.AfterFunc(w.opts.Timeout, func() { cancel(errAttemptTimeout) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.opts.URL, bytes.NewReader(d.body))
	if err != nil {
		return false, fmt.Errorf("building the request: %w", w.redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", WebhookUserAgent)
	req.Header.Set(HeaderEvent, string(d.event))
	req.Header.Set(HeaderDelivery, d.id)
	if d.signature != "" {
		req.Header.Set(HeaderSignature, d.signature)
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		if errors.Is(context.Cause(actx), errAttemptTimeout) && ctx.Err() == nil {
			return true, fmt.Errorf("no response within %s", w.opts.Timeout)
		}
		return true, w.redact(err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Read what is cheap to read so the connection can be reused; the answer
	// is the status alone.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, responseDrainLimit))
	status := fmt.Sprintf("HTTP %s", resp.Status)
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code >= 300 && code < 400:
		return false, fmt.Errorf("%s: redirects are not followed; configure the final URL", status)
	case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		// The two answers for which a Retry-After says when to come back (RFC 9110).
		if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), w.opts.Clock.Now()); ok {
			return true, &retryAfterError{status: status, wait: wait}
		}
		return true, errors.New(status)
	case code == http.StatusRequestTimeout, code >= 500:
		return true, errors.New(status)
	default:
		return false, errors.New(status)
	}
}

// retryAfterError is a 429 or 503 answer whose Retry-After header asked for a wait.
// Its text is the status alone, so that the same failure reads the same for every
// event (the bus logs an error again only when its text changes).
type retryAfterError struct {
	status string
	wait   time.Duration
}

func (e *retryAfterError) Error() string { return e.status }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date, which
// is counted from now. A date in the past asks for no wait.
func parseRetryAfter(header string, now time.Time) (time.Duration, bool) {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(header, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Beyond any backoff limit; also keeps the multiplication from overflowing.
		return time.Duration(min(secs, maxRetryAfterSeconds)) * time.Second, true
	}
	at, err := http.ParseTime(header)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// maxRetryAfterSeconds bounds a Retry-After in seconds (a week).
const maxRetryAfterSeconds = 7 * 24 * 60 * 60

// retryWait is the wait before the attempt after the attempt-th failed one, err
// its failure: the backoff, or longer if the endpoint asked for longer with
// Retry-After (asked, zero if it did not). The caller gives up when the wait
// exceeds BackoffMax rather than retry early or block the webhook's queue.
func (w *Webhook) retryWait(attempt int, err error) (wait, asked time.Duration) {
	wait = w.backoff(attempt)
	if ra, ok := errors.AsType[*retryAfterError](err); ok {
		asked = ra.wait
		wait = max(wait, asked)
	}
	return wait, asked
}

// backoff is the wait after the attempt-th failed attempt: BackoffBase doubled
// attempt-1 times, capped at BackoffMax, then spread over its upper half.
func (w *Webhook) backoff(attempt int) time.Duration {
	d := w.opts.BackoffBase
	for i := 1; i < attempt && d < w.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.BackoffMax)
	j := min(max(w.opts.Jitter(), 0), 1)
	return d/2 + time.Duration(j*float64(d/2))
}

// sleep waits d on the clock; it returns false if ctx ended first.
func (w *Webhook) sleep(ctx context.Context, d time.Duration) bool {
	t := w.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// redact replaces the URL in a client error by the displayed one: a query string
// can carry a token.
func (w *Webhook) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, w.display, ue.Err)
	}
	return err
}

// redactURL drops what may be secret from a URL that may not parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			raw = raw[i+1:]
		}
		return raw
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, Opaque: u.Opaque}).String()
}

// newDeliveryID returns a random (version 4) UUID.
func newDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Sign returns the HeaderSignature value for body: SignaturePrefix and the hex
// HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return SignaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header, a HeaderSignature value, is the
// signature of body with secret. It compares in constant time. A receiver calls
// it with the exact bytes of the request body, before decoding them. An empty
// secret verifies nothing.
func VerifySignature(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(header, SignaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// WebhookDrops returns an Observer for the bus that passes everything on to next
// (which may be nil) and, when the bus drops an event for one of hooks because
// its queue is full, also reports DeliveryDropped to that webhook's Delivered.
// Give it to the bus's Options.Observer; the webhooks may subscribe later.
func WebhookDrops(next Observer, hooks ...*Webhook) Observer {
	o := webhookDrops{next: next, hooks: make(map[string]*Webhook, len(hooks))}
	for _, h := range hooks {
		o.hooks[h.opts.Name] = h
	}
	return o
}

type webhookDrops struct {
	next  Observer
	hooks map[string]*Webhook
}

func (o webhookDrops) Published(e Event) {
	if o.next != nil {
		o.next.Published(e)
	}
}

func (o webhookDrops) Dropped(subscriber string, e Event) {
	if h, ok := o.hooks[subscriber]; ok {
		h.opts.Delivered(DeliveryDropped)
	}
	if o.next != nil {
		o.next.Dropped(subscriber, e)
	}
}

func (o webhookDrops) Failed(subscriber string, e Event, err error) {
	if o.next != nil {
		o.next.Failed(subscriber, e, err)
	}
}
