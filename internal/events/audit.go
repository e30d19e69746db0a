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
// receives, in the order the events were handled. Each line goes to the writer in
// one Write, unbuffered, so a crash loses at most the line being written and a
// reader following the file (tail -f, a log shipper) sees every line at once.
// It is safe for concurrent use, though the bus calls it from one goroutine.
type Audit struct {
	mu sync.Mutex
	w  io.Writer
	// name says where lines go, for errors.
	name string
	// file is the file OpenAudit opened, closed by Close; nil for standard
	// output and for writers given to NewAudit.
	file   *os.File
	closed bool
}

// NewAudit returns an audit trail writing to w, which it never closes.
func NewAudit(w io.Writer) *Audit {
	return &Audit{w: w, name: "the audit writer"}
}

// OpenAudit opens the audit trail the audit_log setting names: "-" is standard
// output; anything else is a file, appended to (created with mode 0600, since
// the trail says who locked what), in a directory that must exist. Errors name
// the setting and the path.
func OpenAudit(path string) (*Audit, error) {
	switch path {
	case "":
		return nil, fmt.Errorf(`%s is empty: give a file path, or "-" for standard output`, auditKey)
	case "-":
		return &Audit{w: os.Stdout, name: "standard output"}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		return &Audit{w: f, name: path, file: f}, nil
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
	if _, err := a.w.Write(line); err != nil {
		return fmt.Errorf("audit trail %s: writing the %s event: %w", a.name, e.Type, err)
	}
	return nil
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
