package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/runatlantis/atlantis-lock-operator/test/harness/chartmemory"
)

func TestManagerFlagsAndEnvPutTheUsersLast(t *testing.T) {
	chart := &chartmemory.Memory{LimitBytes: 192 << 20, LimitPercent: 60, GOGC: 50}
	opts := options{managerArgs: "--memory-limit-percent=80 --worker-count=16", managerEnv: "GOGC=100"}
	flags := managerFlags(opts, chart)
	if want := []string{"--leader-elect=true", "--leader-election-namespace=default", "--memory-limit-percent=60", "--memory-limit-percent=80", "--worker-count=16"}; !slices.Equal(flags, want) {
		t.Errorf("managerFlags = %v, want %v", flags, want)
	}
	if env, want := managerEnv(opts, chart), []string{"CONTAINER_MEMORY_LIMIT=201326592", "GOGC=50", "GOGC=100"}; !slices.Equal(env, want) {
		t.Errorf("managerEnv = %v, want %v", env, want)
	}
	if env := managerEnv(opts, nil); !slices.Equal(env, []string{"GOGC=100"}) {
		t.Errorf("managerEnv with Go's defaults = %v", env)
	}
}

func TestRSSRows(t *testing.T) {
	r := &Results{Held: 10000, Queued: 10000}
	r.Loaded.RSS, r.Loaded.HWM = 142_300_000, 142_700_000
	if rows := r.rssRows(); len(rows) != 1 || rows[0].Met != nil || !strings.Contains(rows[0].Metric, "Go's memory defaults") {
		t.Fatalf("with Go's defaults: %+v; want one row without a target", rows)
	}
	r.ChartMemory = &chartmemory.Memory{LimitBytes: 192 << 20}
	r.Restarts = []RestartResult{{}, {}}
	r.Restarts[1].Memory.HWM = 205_000_000 // over 192Mi = 201.3 MB
	rows := r.rssRows()
	if len(rows) != 2 || rows[0].Met == nil || !*rows[0].Met {
		t.Fatalf("with the chart's defaults: %+v; want the RSS met", rows)
	}
	if rows[1].Met == nil || *rows[1].Met || rows[1].Measured != "205.0 MB" || !strings.Contains(rows[1].Metric, "(3)") {
		t.Fatalf("peak row %+v; want the restart's 205.0 MB of 3 managers, over the limit", rows[1])
	}
	r.Loaded.RSS = 150_000_001
	if rows := r.rssRows(); *rows[0].Met {
		t.Fatal("an RSS over 150 MB met issue 13's target")
	}
}
