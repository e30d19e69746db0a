package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// auditKey names the setting in errors: the configuration key and its flag.
const auditKey = "enhanced_locking.audit_log (--audit-log)"

// Audit writes the audit trail: one JSON line per event, the same JSON a webhook
// receives, in the order the events were published. The operator subscribes it to
// the bus synchronously (Bus.SubscribeSync), so that a line is written before the
// decision that published its event returns: nothing the bus accepted is dropped.
// Each line goes to the writer in one Write, unbuffered, so a crash loses at most the
// line being written and a reader following the file (tail -f, a log shipper) sees
// every line at once. It is safe for concurrent use: decisions of different keys
// publish from different goroutines.
//
// A file trail rotates (AuditOptions): when the next line would make it larger
// than MaxSize, path becomes path.1 (path.1 becomes path.2, and so on, the oldest
// beyond MaxFiles deleted) and a fresh path is begun.
type Audit struct {
	mu sync.Mutex
	w  io.Writer
	// name says where lines go, for errors.
	name string
	// file is the file OpenAudit opened, closed by Close; nil for standard
	// output and for writers given to NewAudit.
	file   *os.File
	opts   AuditOptions
	size   int64
	closed bool
}

// AuditOptions bound a file audit trail.
type AuditOptions struct {
	// MaxSize is the size in bytes at which the file rotates; 0 never rotates.
	MaxSize int64
	// MaxFiles is how many rotated files (path.1 ... path.N) are kept besides
	// path; older ones are deleted. With MaxSize set it must be at least 1.
	MaxFiles int
}

// NewAudit returns an audit trail writing to w, which it never closes.
func NewAudit(w io.Writer) *Audit {
	return &Audit{w: w, name: "the audit writer"}
}

// OpenAudit opens the audit trail the audit_log setting names: "-" is standard
// output; anything else is a file, appended to (created with mode 0600, since
// the trail says who locked what), in a directory that must exist. Errors name
// the setting and the path.
func OpenAudit(path string, opts AuditOptions) (*Audit, error) {
	switch path {
	case "":
		return nil, fmt.Errorf(`%s is empty: give a file path, or "-" for standard output`, auditKey)
	case "-":
		return &Audit{w: os.Stdout, name: "standard output"}, nil
	}
	f, err := openAuditFile(path)
	if err == nil {
		st, serr := f.Stat()
		if serr != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%s: %q: %w", auditKey, path, serr)
		}
		return &Audit{w: f, name: path, file: f, opts: opts, size: st.Size()}, nil
	}
	dir := filepath.Dir(path)
	switch st, serr := os.Stat(dir); {
	case errors.Is(serr, fs.ErrNotExist):
		return nil, fmt.Errorf(`%s: cannot open %q: directory %q does not exist; create it, or set the audit log to "-" for standard output`, auditKey, path, dir)
	case serr == nil && !st.IsDir():
		return nil, fmt.Errorf("%s: cannot open %q: %q is not a directory", auditKey, path, dir)
	}
	return nil, fmt.Errorf("%s: cannot open %q: %w", auditKey, path, err)
}

// HandleEvent appends e as one JSON line.
func (a *Audit) HandleEvent(_ context.Context, e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit trail: encoding the %s event: %w", e.Type, err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return fmt.Errorf("audit trail %s is closed; the %s event is not recorded", a.name, e.Type)
	}
	if a.file != nil && a.opts.MaxSize > 0 && a.size > 0 && a.size+int64(len(line)) > a.opts.MaxSize {
		if err := a.rotate(); err != nil {
			return fmt.Errorf("audit trail %s: rotating before the %s event: %w", a.name, e.Type, err)
		}
	}
	n, err := a.w.Write(line)
	a.size += int64(n)
	if err != nil {
		return fmt.Errorf("audit trail %s: writing the %s event: %w", a.name, e.Type, err)
	}
	return nil
}

// rotate moves the trail to name.1, older ones one further, and begins a fresh
// file. The old file is synced first, so that what was written survives a crash
// right after. If rotating fails, the trail is closed: the events after it are
// refused with an error (logged by the bus, counted as a failed delivery).
func (a *Audit) rotate() error {
	if err := a.file.Sync(); err != nil {
		return err
	}
	err := a.file.Close()
	if err == nil {
		err = a.reopen()
	}
	if err != nil {
		// Nothing more can be written: refuse the next events rather than lose
		// them silently.
		a.file, a.w, a.closed = nil, io.Discard, true
	}
	return err
}

// reopen shifts the rotated files and begins a fresh one.
func (a *Audit) reopen() error {
	keep := max(a.opts.MaxFiles, 1)
	if err := os.Remove(rotated(a.name, keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotated(a.name, i), rotated(a.name, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(a.name, rotated(a.name, 1)); err != nil {
		return err
	}
	f, err := openAuditFile(a.name)
	if err != nil {
		return err
	}
	a.file, a.w, a.size = f, f, 0
	return nil
}

// rotated is the name of the i-th rotated file of the trail at path.
func rotated(path string, i int) string { return fmt.Sprintf("%s.%d", path, i) }

// openAuditFile opens path for appending, created with mode 0600 since the trail
// says who locked what.
func openAuditFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
}

// Close flushes the file to disk and closes it (standard output and writers
// given to NewAudit stay open). Close it after the bus has shut down; events
// handled later are refused with an error. Closing twice is harmless.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.file == nil {
		return nil
	}
	serr := a.file.Sync()
	if err := a.file.Close(); err != nil {
		return fmt.Errorf("audit trail %s: closing: %w", a.name, err)
	}
	if serr != nil {
		return fmt.Errorf("audit trail %s: flushing to disk: %w", a.name, serr)
	}
	return nil
}
