// Package proccpu reads the CPU time of processes on this machine from /proc: what the
// benchmarks use to measure a local PostgreSQL server's CPU (its whole process tree) around the
// work they time. Linux only; on another system, or for a process that cannot be read, the
// functions say so with ok false.
package proccpu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/convai-retention/retention/internal/boundedfile"
)

// ClockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on Linux.
const ClockTick = 10 * time.Millisecond

// procRoot is where the process files are read: /proc, another directory in tests.
var procRoot = "/proc"

// The most read of a process's stat line (52 numbers and a name of at most 16 bytes: under 1 KB)
// and of its comm (the name and a newline). A file that is not regular, or longer, is not read.
const (
	maxStat = 4096
	maxComm = 64
)

// procFile reads /proc/PID/NAME, bounded: nil when it cannot be read, is not a regular file or
// is over limit bytes.
func procFile(pid int, name string, limit int64) []byte {
	b, err := boundedfile.Read(filepath.Join(procRoot, strconv.Itoa(pid), name), limit)
	if err != nil {
		return nil
	}
	return b
}

// Times returns the parent pid and the user+system CPU time of pid, and that of its children
// it has waited for, from /proc/PID/stat.
func Times(pid int) (ppid int, self, children time.Duration, ok bool) {
	b := procFile(pid, "stat", maxStat)
	if b == nil {
		return 0, 0, 0, false
	}
	// The command name is in parentheses and may hold spaces: the fields follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 { // state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state
		return 0, 0, 0, false
	}
	n := func(k int) time.Duration { v, _ := strconv.ParseInt(f[k], 10, 64); return time.Duration(v) * ClockTick }
	ppid, _ = strconv.Atoi(f[1])
	return ppid, n(11) + n(12), n(13) + n(14), true
}

// Tree is the CPU time a process and all its children ever used: its own, its waited-for
// children's, and that of its live children. Measured before and after some work, the
// difference is what the tree used during it, including children that started and ended within.
func Tree(root int) (time.Duration, bool) {
	_, self, reaped, ok := Times(root)
	if !ok {
		return 0, false
	}
	total := self + reaped
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if ppid, self, _, ok := Times(pid); ok && ppid == root {
			total += self
		}
	}
	return total, true
}

// PostgresParent returns the parent of pid, a process of a PostgreSQL server (its checkpointer,
// say: pg_stat_activity names it), when that parent is a postgres process on this machine: the
// server's main process, the root of its tree. 0 when it cannot be seen.
func PostgresParent(pid int) int {
	ppid, _, _, ok := Times(pid)
	if !ok {
		return 0
	}
	if comm := procFile(ppid, "comm", maxComm); strings.TrimSpace(string(comm)) != "postgres" {
		return 0
	}
	return ppid
}
