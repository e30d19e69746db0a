package main

import (
	"fmt"
	"strconv"
)

// containerMemoryLimitEnv names the variable through which the chart passes the
// container's memory limit in bytes (a resourceFieldRef of limits.memory).
const containerMemoryLimitEnv = "CONTAINER_MEMORY_LIMIT"

// softMemoryLimit returns the Go runtime's soft memory limit for percent of the
// container's memory limit, read from the environment through getenv, or 0 when
// none is to be set: percent is 0, or GOMEMLIMIT is set (the runtime has applied
// it, and an explicit limit wins).
//
// The soft limit sits well under the container's limit because it bounds only the
// memory the Go runtime manages: the binary, its libraries and what the runtime
// has not yet returned to the system come on top, some 25 MB for the operator.
// Near the limit the collector runs more often and returns freed memory to the
// system sooner, which is what keeps the resident size near the live data
// (docs/benchmarks.md: 10,000 keys held with 10,000 waiting, 149 MB resident at a
// 120 MiB soft limit against 187 MB without one).
func softMemoryLimit(percent int, getenv func(string) string) (int64, error) {
	if percent < 0 || percent > 100 {
		return 0, fmt.Errorf("--memory-limit-percent=%d: must be between 0 (off) and 100", percent)
	}
	if percent == 0 || getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	v := getenv(containerMemoryLimitEnv)
	if v == "" {
		return 0, fmt.Errorf("--memory-limit-percent=%d needs the container's memory limit in bytes in %s", percent, containerMemoryLimitEnv)
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("%s=%q: want the container's memory limit as a positive number of bytes", containerMemoryLimitEnv, v)
	}
	return limit / 100 * int64(percent), nil
}
