package managerproc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every
// Linux architecture Go supports (the kernel fixes it for user space, whatever its
// own HZ).
const clockTicks = 100

// Usage is a process's memory and CPU, from /proc.
type Usage struct {
	// RSS is the resident set size now (VmRSS), in bytes.
	RSS uint64 `json:"rssBytes"`
	// HWM is the peak resident set size so far (VmHWM), in bytes.
	HWM uint64 `json:"hwmBytes"`
	// RSSAnon is the anonymous part of RSS (RssAnon), in bytes: the memory a
	// container's limit can kill the process for; the rest is mostly the binary's
	// pages, which the kernel can drop and read again.
	RSSAnon uint64 `json:"rssAnonBytes"`
	// CPU is the user plus system CPU time used so far.
	CPU time.Duration `json:"cpuNanoseconds"`
}

// ReadUsage reads the usage of process pid from /proc/PID/status and /proc/PID/stat.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	if u.RSS, err = statusKB(status, "VmRSS"); err != nil {
		return u, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	if u.HWM, err = statusKB(status, "VmHWM"); err != nil {
		return u, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	if u.RSSAnon, err = statusKB(status, "RssAnon"); err != nil {
		return u, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	if u.CPU, err = statCPU(stat); err != nil {
		return u, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return u, nil
}

// statusKB returns the value of a "Name:   1234 kB" line of /proc/PID/status in bytes.
func statusKB(status []byte, name string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != name {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("%s: %q is not a size in kB", name, value)
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s line", name)
}

// statCPU returns utime + stime of /proc/PID/stat: "pid (comm) state ppid ..." where
// comm may hold spaces and parentheses, so the fields are counted after the last ')'.
// utime and stime are fields 14 and 15 of the whole line, 12 and 13 after comm.
func statCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("no ')' closing the command name in %q", stat)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(fields))
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time %q: %w", f, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
