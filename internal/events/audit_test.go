package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// auditEvents returns n events of varied types with distinct fencing tokens.
func auditEvents(n int) []Event {
	types := Types()
	out := make([]Event, n)
	for i := range out {
		e := sampleEvent()
		e.Type = types[i%len(types)]
		e.FencingToken = fmt.Sprint(i + 1)
		e.Time = sampleTime.Add(time.Duration(i) * time.Second)
		out[i] = e
	}
	return out
}

// parseLines decodes one Event per line, failing on anything else.
func parseLines(t *testing.T, data []byte) []Event {
	t.Helper()
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var e Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %d %q is not an event: %v", len(out)+1, sc.Text(), err)
		}
		out = append(out, e)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("the trail does not end with a newline")
	}
	return out
}

func TestAuditWritesOneJSONLinePerEventInOrder(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(&buf)
	events := auditEvents(13)
	for _, e := range events {
		if err := a.HandleEvent(context.Background(), e); err != nil {
			t.Fatalf("HandleEvent: %v", err)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 13 {
		t.Fatalf("%d lines, want 13:\n%s", n, buf.String())
	}
	if diff := cmp.Diff(events, parseLines(t, buf.Bytes())); diff != "" {
		t.Errorf("events read back (-written +read):\n%s", diff)
	}
	// The line is exactly the webhook body, so one parser serves both.
	first, _, _ := strings.Cut(buf.String(), "\n")
	want, err := json.Marshal(events[0])
	if err != nil {
		t.Fatal(err)
	}
	if first != string(want) {
		t.Errorf("line 1:\n got %s\nwant %s", first, want)
	}
}

func TestAuditFileAppendsAcrossOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	events := auditEvents(5)
	write := func(evs []Event) {
		t.Helper()
		a, err := OpenAudit(path, AuditOptions{})
		if err != nil {
			t.Fatalf("OpenAudit: %v", err)
		}
		for _, e := range evs {
			if err := a.HandleEvent(context.Background(), e); err != nil {
				t.Fatalf("HandleEvent: %v", err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	write(events[:3])
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("the new trail has mode %o, want 600", perm)
	}
	write(events[3:])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(events, parseLines(t, data)); diff != "" {
		t.Errorf("events after two opens (-written +read):\n%s", diff)
	}
}

func TestAuditThroughBusKeepsOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := OpenAudit(path, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := NewBus(Options{BufferSize: 1000})
	sub, err := bus.Subscribe("audit", a, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	events := auditEvents(500)
	for _, e := range events {
		bus.Publish(e)
	}
	if err := bus.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := sub.Stats(); st.Dropped != 0 || st.Failed != 0 || st.Handled != 500 {
		t.Errorf("audit subscription: %+v, want 500 handled, none dropped or failed", st)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(events, parseLines(t, data)); diff != "" {
		t.Errorf("events through the bus (-published +read):\n%s", diff)
	}
}

func TestOpenAuditErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no", "such")
	tests := []struct {
		name, path string
		want       []string
	}{
		{"missing directory", filepath.Join(missing, "audit.jsonl"), []string{
			"enhanced_locking.audit_log", `cannot open "` + filepath.Join(missing, "audit.jsonl") + `"`,
			`directory "` + missing + `" does not exist`, `"-" for standard output`,
		}},
		{"parent is a file", filepath.Join(file, "audit.jsonl"), []string{
			"enhanced_locking.audit_log", `"` + file + `" is not a directory`,
		}},
		{"path is a directory", dir, []string{
			"enhanced_locking.audit_log", `cannot open "` + dir + `"`, "is a directory",
		}},
		{"empty", "", []string{"enhanced_locking.audit_log", "is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := OpenAudit(tt.path, AuditOptions{})
			if err == nil {
				_ = a.Close()
				t.Fatalf("OpenAudit(%q) succeeded", tt.path)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAuditStandardOutput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	stdout := os.Stdout
	os.Stdout = w
	t.Cleanup(func() { os.Stdout = stdout })

	a, err := OpenAudit("-", AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEvent()
	if err := a.HandleEvent(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Close left standard output open.
	if _, err := fmt.Fprintln(w, "still open"); err != nil {
		t.Fatalf("standard output was closed: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	line, rest, _ := strings.Cut(string(data), "\n")
	if diff := cmp.Diff([]Event{e}, parseLines(t, []byte(line+"\n"))); diff != "" {
		t.Errorf("stdout line (-written +read):\n%s", diff)
	}
	if rest != "still open\n" {
		t.Errorf("after the event, stdout got %q", rest)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAuditErrors(t *testing.T) {
	a := NewAudit(failingWriter{})
	err := a.HandleEvent(context.Background(), sampleEvent())
	if err == nil || !strings.Contains(err.Error(), "writing the lock_acquired event: disk full") {
		t.Errorf("write error %v, want one naming the event and the cause", err)
	}

	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err = OpenAudit(path, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	err = a.HandleEvent(context.Background(), sampleEvent())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("HandleEvent after Close: %v, want an error naming the closed trail", err)
	}
}

// TestAuditFloodLosesNothing floods a bus whose only subscriber is the audit trail,
// subscribed as the operator subscribes it (synchronously), from 8 goroutines at
// once, with a buffer of one and a file that rotates every 256 KiB: every event must
// be in exactly one line of exactly one file, and the rotated files must stay under
// the size bound.
func TestAuditFloodLosesNothing(t *testing.T) {
	const (
		publishers = 8
		each       = 12_500
		maxSize    = 256 << 10
	)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := OpenAudit(path, AuditOptions{MaxSize: maxSize, MaxFiles: 1000})
	if err != nil {
		t.Fatal(err)
	}
	bus := NewBus(Options{BufferSize: 1})
	if _, err := bus.SubscribeSync("audit", a, Filter{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Go(func() {
			for i := range each {
				bus.Publish(Event{Type: LockAcquired, Namespace: "atlantis", Request: fmt.Sprintf("g%d-%d", g, i), FencingToken: "1"})
			}
		})
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	lines := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > maxSize {
			t.Errorf("%s has %d bytes, more than the %d it rotates at", f, len(data), maxSize)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			var e Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%s: a line that is not an event: %q: %v", f, line, err)
			}
			seen[e.Request]++
			lines++
		}
	}
	if want := publishers * each; lines != want || len(seen) != want {
		t.Errorf("%d lines, %d distinct events in %d files; want %d of each", lines, len(seen), len(files), want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s written %d times", id, n)
		}
	}
	if bus.Dropped() != 0 {
		t.Errorf("the bus dropped %d events", bus.Dropped())
	}
	t.Logf("%d events in %d files of at most %d KiB", lines, len(files), maxSize>>10)
}

// TestAuditRotationKeepsMaxFiles: past MaxFiles rotated files, the oldest go.
func TestAuditRotationKeepsMaxFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := OpenAudit(path, AuditOptions{MaxSize: 1, MaxFiles: 2}) // one line per file
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := a.HandleEvent(context.Background(), Event{Type: LockAcquired, Request: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{path: "4", path + ".1": "3", path + ".2": "2"} {
		data, err := os.ReadFile(name)
		var e Event
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if err != nil || e.Request != want {
			t.Errorf("%s: %q %v; want the event of request %s", name, data, err, want)
		}
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.3 exists (%v); want only 2 rotated files kept", path, err)
	}
}
