package load

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times; it is 100
// on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds reads a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unreadable CPU times", pid)
	}
	return float64(utime+stime) / clockTicks, nil
}

// memory reads a process's resident set size (VmRSS) and the anonymous
// part of it (RssAnon): the rest is file-backed, such as the pages of
// memory-mapped database tables, which the kernel can reclaim.
func memory(pid int) (rss, anon uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	kB := func(v string) (uint64, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10, err
	}
	var haveRSS, haveAnon bool
	sc := bufio.NewScanner(f)
	for sc.Scan() && !(haveRSS && haveAnon) {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			if rss, err = kB(v); err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/status: VmRSS: %w", pid, err)
			}
			haveRSS = true
		} else if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			if anon, err = kB(v); err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/status: RssAnon: %w", pid, err)
			}
			haveAnon = true
		}
	}
	if !haveRSS || !haveAnon {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS or RssAnon", pid)
	}
	return rss, anon, nil
}
