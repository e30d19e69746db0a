package main

import (
	"strings"
	"testing"
)

func TestSoftMemoryLimit(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	const mi = 1 << 20
	for _, tc := range []struct {
		name    string
		percent int
		env     map[string]string
		want    int64
		wantErr string
	}{
		{name: "off", percent: 0, env: map[string]string{containerMemoryLimitEnv: "201326592"}},
		{name: "60 % of 192Mi", percent: 60, env: map[string]string{containerMemoryLimitEnv: "201326592"}, want: 201326592 / 100 * 60},
		{name: "all of it", percent: 100, env: map[string]string{containerMemoryLimitEnv: "100"}, want: 100},
		{name: "GOMEMLIMIT wins", percent: 60, env: map[string]string{"GOMEMLIMIT": "300MiB", containerMemoryLimitEnv: "201326592"}},
		{name: "no container limit", percent: 60, env: map[string]string{}, wantErr: containerMemoryLimitEnv},
		{name: "not a number", percent: 60, env: map[string]string{containerMemoryLimitEnv: "192Mi"}, wantErr: `CONTAINER_MEMORY_LIMIT="192Mi"`},
		{name: "zero limit", percent: 60, env: map[string]string{containerMemoryLimitEnv: "0"}, wantErr: "positive"},
		{name: "over 100", percent: 120, env: map[string]string{containerMemoryLimitEnv: "100"}, wantErr: "--memory-limit-percent=120"},
		{name: "negative", percent: -1, env: map[string]string{}, wantErr: "--memory-limit-percent=-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := softMemoryLimit(tc.percent, env(tc.env))
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v; want one naming %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("limit %d (%.1f MiB); want %d", got, float64(got)/mi, tc.want)
			}
		})
	}
}
