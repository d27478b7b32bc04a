package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, which Linux fixes at
// 100 for user space on every architecture it supports, whatever the kernel's HZ.
const clockTick = 10 * time.Millisecond

// procStat is what the load tool reads from /proc/PID/stat.
type procStat struct {
	ppid  int
	utime int64 // clock ticks
	stime int64
}

// parseStat reads /proc/PID/stat. The command name (field 2) is in parentheses and may hold
// spaces or parentheses itself, so the fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	var st procStat
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	if st.utime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat utime: %w", err)
	}
	if st.stime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat stime: %w", err)
	}
	return st, nil
}

// procCPU returns a process's user+system CPU time (its threads, not its children).
func procCPU(pid int) (time.Duration, error) {
	t, err := procTimes(pid)
	return t.user + t.sys, err
}

// cpuTimes are a process's CPU times, split.
type cpuTimes struct{ user, sys time.Duration }

func (t cpuTimes) sub(o cpuTimes) cpuTimes { return cpuTimes{t.user - o.user, t.sys - o.sys} }

// procTimes returns a process's user and system CPU time.
func procTimes(pid int) (cpuTimes, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	st, err := parseStat(data)
	if err != nil {
		return cpuTimes{}, err
	}
	return cpuTimes{time.Duration(st.utime) * clockTick, time.Duration(st.stime) * clockTick}, nil
}

// parseVMRSS reads the VmRSS line of /proc/PID/status, in bytes.
func parseVMRSS(data []byte) (int64, error) {
	for _, line := range scanLines(data) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("status: no VmRSS line")
}

// procRSS returns a process's resident set size in bytes.
func procRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseVMRSS(data)
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) ([]int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		st, err := parseStat(data)
		if err != nil || st.ppid != pid {
			continue
		}
		if p, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// selfCPU returns the load generator's own CPU time, to show what the load cost.
func selfCPU() time.Duration {
	d, err := procCPU(os.Getpid())
	if err != nil {
		return 0
	}
	return d
}

// parseBusy reads the first line of /proc/stat and returns the CPU time all processors spent
// busy (user, nice, system, irq, softirq, steal; guest time is inside user).
func parseBusy(data []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += v
	}
	return time.Duration(busy) * clockTick, nil
}

// machineBusy returns the CPU time the whole machine has been busy.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseBusy(data)
}

// procWrites returns how many write system calls (write, writev, sendmsg...) process pid
// has made: syscw in /proc/PID/io.
func procWrites(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	return parseIOField(data, "syscw")
}

// parseIOField reads one "name: value" line of /proc/PID/io.
func parseIOField(data []byte, name string) (int64, error) {
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/io", name)
}

// procFDs counts a process's open file descriptors (the entries of /proc/PID/fd).
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}
