package main

import (
	"bytes"
	"errors"
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
	st, err := readStat(pid)
	if err != nil {
		return usage{}, err
	}
	u := usage{cpu: time.Duration(st.utime+st.stime) * tick}
	u.rss, u.hwm, _, err = procMemory(pid)
	return u, err
}

// stat is what the orchestrator reads of /proc/<pid>/stat, CPU times in
// clock ticks.
type stat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// readStat reads a process's parent and CPU times from /proc/<pid>/stat.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name, in parentheses, may hold spaces: count fields from
	// after it. ppid is field 4 of the whole line; utime, stime, cutime
	// and cstime are fields 14 to 17 (proc(5)).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 15 {
		return stat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var st stat
	var errs [5]error
	st.ppid, errs[0] = strconv.Atoi(f[1])
	st.utime, errs[1] = strconv.ParseInt(f[11], 10, 64)
	st.stime, errs[2] = strconv.ParseInt(f[12], 10, 64)
	st.cutime, errs[3] = strconv.ParseInt(f[13], 10, 64)
	st.cstime, errs[4] = strconv.ParseInt(f[14], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// treeCPU returns the CPU time used by the process root and all its
// descendants, such as a PostgreSQL postmaster and its backends. Waited-for
// children's times (cutime, cstime) count too, so that a backend which
// exits moves its CPU time from its own entry into its parent's rather
// than out of the sum.
func treeCPU(root int, tick time.Duration) (time.Duration, error) {
	if _, err := readStat(root); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	stats := map[int]stat{}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		st, err := readStat(pid)
		if err != nil {
			continue // it exited since the listing
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var ticks int64
	for queue := []int{root}; len(queue) > 0; queue = queue[1:] {
		st := stats[queue[0]]
		ticks += st.utime + st.stime + st.cutime + st.cstime
		queue = append(queue, children[queue[0]]...)
	}
	return time.Duration(ticks) * tick, nil
}

// procMemory reads VmRSS, VmHWM and RssAnon from /proc/<pid>/status.
// RssAnon is the part of VmRSS that the process's own work holds (heap,
// stacks); the rest is mostly the binary's mapped pages, which every
// process of the same binary shares.
func procMemory(pid int) (rss, hwm, anon int64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range strings.Lines(string(status)) {
		key, value, _ := strings.Cut(line, ":")
		switch key {
		case "VmRSS":
			rss = kib(value)
		case "VmHWM":
			hwm = kib(value)
		case "RssAnon":
			anon = kib(value)
		}
	}
	return rss, hwm, anon, nil
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
