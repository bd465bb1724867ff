package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/proccpu"
)

// benchKey is the API key the fake accepts and the retention process sends.
const benchKey = "retention-bench-key"

// fake is a running convai-fake process.
type fake struct {
	cmd  *exec.Cmd
	url  string
	http *http.Client
}

// startFake starts convai-fake on a free loopback port with the given latency, its log in logPath.
func startFake(ctx context.Context, binDir string, latency time.Duration, logPath string) (*fake, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(binDir, "convai-fake"), "--listen", "127.0.0.1:0", "--latency", latency.String())
	cmd.Env = childEnv("CONVAI_API_KEY="+benchKey, "LOG_LEVEL=warn")
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start convai-fake (run make build first?): %w", err)
	}
	f := &fake{cmd: cmd, http: &http.Client{Timeout: 5 * time.Second}}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() { // keep the pipe drained
		}
	}()
	select {
	case l, ok := <-line:
		const prefix = "convai-fake listening on "
		if !ok || !strings.HasPrefix(l, prefix) {
			f.stop()
			return nil, fmt.Errorf("convai-fake did not say where it listens (see %s)", logPath)
		}
		f.url = strings.TrimSpace(strings.TrimPrefix(l, prefix))
	case <-time.After(10 * time.Second):
		f.stop()
		return nil, fmt.Errorf("convai-fake did not start within 10s (see %s)", logPath)
	case <-ctx.Done():
		f.stop()
		return nil, ctx.Err()
	}
	return f, nil
}

// stats reads the fake's counters.
func (f *fake) stats(ctx context.Context) (convaitest.Stats, error) {
	var st convaitest.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/_fake/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return st, fmt.Errorf("read convai-fake stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("read convai-fake stats: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("read convai-fake stats: %w", err)
	}
	return st, nil
}

// stop ends the fake and returns the CPU time it used in its life.
func (f *fake) stop() time.Duration {
	f.http.CloseIdleConnections()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
	}
	return cpuOf(f.cmd.ProcessState)
}

// childEnv is this process's environment without anything that would change how the retention
// binary or the fake behave, plus set.
func childEnv(set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "RETENTION_") || strings.HasPrefix(k, "CONVAI_") || k == "DATABASE_URL" ||
			k == "LOG_LEVEL" || k == "JOB_COMPLETION_INDEX" || strings.HasPrefix(k, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, set...)
}

// cpuOf is the user and system CPU time of an exited process.
func cpuOf(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// maxRSS is the peak resident set of an exited process, in bytes.
func maxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024 // kilobytes on Linux
	}
	return 0
}

// vmRSS reads the current resident set of pid from /proc, in bytes; 0 if it cannot.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// machineCPU returns the busy and total CPU time of the whole machine from /proc/stat.
func machineCPU() (busy, total time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * proccpu.ClockTick
		total += d
		if i != 3 && i != 4 { // idle, iowait
			busy += d
		}
	}
	return busy, total, true
}
