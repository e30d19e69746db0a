package main

import (
	"maps"
	"testing"
)

// deltaOf counts what was sent between two scrapes of the operator's requests by
// kind: writes and reads apart, watches (which stay open) and kinds with nothing
// new left out.
func TestDeltaOf(t *testing.T) {
	before := map[string]int{"update leases": 10, "get lockrequests": 2, "watch leases": 1, "create leases": 3}
	now := map[string]int{"update leases": 14, "get lockrequests": 3, "watch leases": 2, "create leases": 3,
		"update lockrequests/status": 2, "list leases": 1}
	d := deltaOf(before, now)
	want := map[string]int{"update leases": 4, "get lockrequests": 1, "update lockrequests/status": 2, "list leases": 1}
	if !maps.Equal(d.Counts, want) {
		t.Errorf("counts %v, want %v", d.Counts, want)
	}
	if d.Writes != 6 || d.Reads != 2 {
		t.Errorf("writes %d, reads %d; want 6 and 2", d.Writes, d.Reads)
	}
}
