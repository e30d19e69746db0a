package managerproc

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestStatCPU(t *testing.T) {
	// A command name with spaces and a ')' of its own; utime 250 and stime 50 ticks.
	stat := "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200 18446744073709551615\n"
	got, err := statCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("statCPU = %s, want %s", got, want)
	}
	if _, err := statCPU([]byte("4242 (short) S 1")); err == nil {
		t.Error("statCPU accepted a line without the CPU fields")
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tmanager\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	for name, want := range map[string]uint64{"VmRSS": 40960 * 1024, "VmHWM": 51200 * 1024} {
		got, err := statusKB([]byte(status), name)
		if err != nil || got != want {
			t.Errorf("statusKB(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := statusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("statusKB found a line that is not there")
	}
}

// TestReadUsageOfThisProcess reads this test's own /proc entries: a process that has
// run Go code is resident and has used some CPU.
func TestReadUsageOfThisProcess(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS == 0 || u.HWM < u.RSS {
		t.Errorf("RSS %d, peak %d: want a resident process whose peak is at least its RSS", u.RSS, u.HWM)
	}
}

func TestParseMetricsSum(t *testing.T) {
	text := `# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",method="GET"} 10
rest_client_requests_total{code="200",method="PUT"} 4
rest_client_requests_total{code="409",method="PUT"} 1
# TYPE workqueue_depth gauge
workqueue_depth{controller="lock",name="lock"} 3
# TYPE h histogram
h_bucket{le="1"} 2
h_bucket{le="+Inf"} 5
h_sum 7
h_count 5
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rest_client_requests_total", nil, 15},
		{"rest_client_requests_total", []string{"method", "PUT"}, 5},
		{"rest_client_requests_total", []string{"method", "PUT", "code", "409"}, 1},
		{"workqueue_depth", []string{"name", "lock"}, 3},
		{"h", nil, 5},
		{"missing", nil, 0},
	} {
		if got := m.Sum(tc.name, tc.labels...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
