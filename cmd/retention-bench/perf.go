package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// perfRecorder samples the call stacks of one process with perf while it runs. Go binaries keep
// frame pointers, so perf's own unwinding gives whole Go stacks without a flag in the binary.
type perfRecorder struct {
	cmd  *exec.Cmd
	data string
	done chan struct{}
}

// startPerf attaches perf to pid, writing its samples to data.
func startPerf(pid int, data string) (*perfRecorder, error) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, errors.New("perf is not on PATH (Debian: apt-get install linux-perf)")
	}
	cmd := exec.Command(bin, "record", "--quiet", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start perf: %w", err)
	}
	p := &perfRecorder{cmd: cmd, data: data, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	select {
	case <-p.done:
		return nil, fmt.Errorf("perf record stopped at once: %s", strings.TrimSpace(stderr.String()))
	case <-time.After(100 * time.Millisecond):
	}
	return p, nil
}

// finish stops perf once the process has ended, writes the report to txt and returns its path
// and the top entries: the functions with the most samples of their own, and the callers the
// time comes from.
func (p *perfRecorder) finish(txt string) (string, string, error) {
	select {
	case <-p.done: // perf ends when the process it follows does
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		<-p.done
	}
	flat, err := exec.Command("perf", "report", "-i", p.data, "--stdio", "--no-children", "-g", "none",
		"--sort", "symbol", "--percent-limit", "0.7").Output()
	if err != nil {
		return "", "", fmt.Errorf("perf report: %w", err)
	}
	cum, err := exec.Command("perf", "report", "-i", p.data, "--stdio", "--children", "-g", "none",
		"--sort", "symbol", "--percent-limit", "4").Output()
	if err != nil {
		return "", "", fmt.Errorf("perf report: %w", err)
	}
	report := "# self (flat)\n" + string(flat) + "\n# with callees (cumulative)\n" + string(cum)
	if err := os.WriteFile(txt, []byte(report), 0o644); err != nil {
		return "", "", err
	}
	return txt, topLines(flat, 25) + "\n  cumulative:\n" + topLines(cum, 25), nil
}

// topLines returns the first n entry lines of a perf report, without its comments.
func topLines(report []byte, n int) string {
	var out []string
	s := bufio.NewScanner(bytes.NewReader(report))
	for s.Scan() && len(out) < n {
		l := strings.TrimRight(s.Text(), " ")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		// perf pads unused sort columns with dashes.
		l = strings.TrimSpace(strings.TrimRight(l, " -"))
		out = append(out, "  "+l)
	}
	return strings.Join(out, "\n")
}
