package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is a process's resource use at one moment.
type usage struct {
	cpu time.Duration // user plus system CPU time so far
	rss int64         // resident set size now, in bytes
	hwm int64         // peak resident set size so far, in bytes
}

// clockTick returns the length of the clock tick that /proc/<pid>/stat
// counts CPU time in: 1/`getconf CLK_TCK`, which is nearly always 1/100 s.
func clockTick() time.Duration {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 10 * time.Millisecond
	}
	hz, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || hz <= 0 {
		return 10 * time.Millisecond
	}
	return time.Second / time.Duration(hz)
}

// procUsage reads a process's CPU time from /proc/<pid>/stat and its
// memory from /proc/<pid>/status.
func procUsage(pid int, tick time.Duration) (usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	// The command name, in parentheses, may hold spaces: count fields from
	// after it. utime and stime are fields 14 and 15 of the whole line.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return usage{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return usage{}, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	u := usage{cpu: time.Duration(utime+stime) * tick}
	u.rss, u.hwm, err = procMemory(pid)
	return u, err
}

// procMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func procMemory(pid int) (rss, hwm int64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(status)) {
		key, value, _ := strings.Cut(line, ":")
		switch key {
		case "VmRSS":
			rss = kib(value)
		case "VmHWM":
			hwm = kib(value)
		}
	}
	return rss, hwm, nil
}

// kib parses a /proc/<pid>/status size such as "  12345 kB" into bytes.
func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n << 10
}

// selfCPU returns the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg returns the first three fields of /proc/loadavg, to record how
// busy the shared machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
