package operator

import "sync"

// maxInterned bounds the intern table: the strings it is meant for (namespaces,
// repositories, workspaces, priorities, condition types, reasons and the
// operator's own fixed messages) number far fewer in any cluster, and a string
// met once the table is full is simply kept as decoded.
const maxInterned = 4096

// interner keeps one copy of the strings that recur across cached objects. The
// JSON decoder allocates every string of every object afresh: at 10,000 held and
// 10,000 queued requests the namespace alone was 40,000 copies of itself.
type interner struct {
	mu      sync.Mutex
	strings map[string]string
}

// of returns the table's copy of s, adding s while the table has room.
func (t *interner) of(s string) string {
	if s == "" {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.strings[s]; ok {
		return c
	}
	if t.strings == nil {
		t.strings = make(map[string]string)
	}
	if len(t.strings) < maxInterned {
		t.strings[s] = s
	}
	return s
}
