package report_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/report/reporttest"
)

// chromium returns a Chromium (or Chrome) binary: $CHROMIUM, or the first of the usual names on
// PATH. Without one the test fails: the HTML report is only trusted once a real browser has
// rendered it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium to render the HTML report in: none of chromium, chromium-browser, google-chrome is on PATH " +
		"and $CHROMIUM is not set. Run scripts/ensure-chromium.sh (as root it installs Debian's chromium package), " +
		"or set CHROMIUM=/path/to/chrome")
	return ""
}

// headless runs Chromium headless on the file page with args and returns what it wrote on
// stdout.
func headless(t *testing.T, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium(t), append(append(base, args...), "file://"+page)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium %v: %s", args, stderr.String())
	return stdout.Bytes()
}

// cells returns the data-field cells of the table row whose attribute attr is value.
func cells(t *testing.T, dom, attr, value string) map[string]string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr ` + attr + `="` + regexp.QuoteMeta(value) + `">(.*?)</tr>`).FindStringSubmatch(dom)
	require.NotNil(t, row, "no row %s=%q in the rendered page", attr, value)
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`data-field="([a-z0-9_]+)">([^<]*)<`).FindAllStringSubmatch(row[1], -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestReportHTMLInChromium(t *testing.T) {
	t.Parallel()
	r := build(t, setup(t), report.Options{})
	page := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	require.NoError(t, r.Write(&buf, report.FormatHTML, ""))
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o600))

	// One file: nothing to fetch, nothing to run.
	src := buf.String()
	for _, bad := range []string{"<script", " src=", " href=", "url(", "@import", "<link"} {
		require.NotContains(t, src, bad)
	}

	dom := string(headless(t, page, "--dump-dom"))
	require.Contains(t, dom, "<h1>Retention compliance report</h1>")
	row := func(cs map[string]string) []string {
		return []string{cs["deleted"], cs["failed"], cs["outstanding"], cs["held"], cs["overdue"], cs["lag_p50"], cs["lag_p95"], cs["lag_max"]}
	}
	require.Equal(t, []string{"5", "1", "3", "1", "2", "3h 0m", "3d 22h", "3d 22h"}, row(cells(t, dom, "data-character", "alpha")))
	require.Equal(t, []string{"3", "1", "2", "0", "1", "1h 30m", "8d 0h", "8d 0h"}, row(cells(t, dom, "data-character", "beta")))
	require.Equal(t, []string{"0", "0", "0", "2", "0", "-", "-", "-"}, row(cells(t, dom, "data-character", "gamma")))
	require.Equal(t, []string{"8", "2", "5", "3", "3", "2h 0m", "8d 0h", "8d 0h"}, row(cells(t, dom, "data-character", "(total)")))
	require.Contains(t, dom, "default policy 1: 30 days; held by hold 2")
	require.Contains(t, dom, `<dd id="overdue" class="alarm">3 session(s) now: expired for longer than the SLA (7d) and still not deleted, not held</dd>`)
	require.Contains(t, dom, `<dd id="late" class="alarm">1 of the 8 deletion(s) in the period: confirmed more than the SLA (7d) after the session expired</dd>`)
	require.Equal(t, "1", cells(t, dom, "data-character", "beta")["deleted_late"])
	require.Equal(t, "1", cells(t, dom, "data-day", "2025-03-07")["deleted_late"])

	// The page the browser shows states what the JSON states, and tells the reader to run a
	// command that works: the v1 chain's head as a checkpoint, never "0:000…".
	shown, err := reporttest.FromHTML(dom)
	require.NoError(t, err)
	want, err := reporttest.FromJSON([]byte(render(t, r, report.FormatJSON, "")))
	require.NoError(t, err)
	require.Equal(t, want, shown)
	require.Equal(t, []string{"retention audit verify --checkpoint 13:" + r.Chain.Hash}, shown.Checks)
	require.NotContains(t, dom, "0:0000000000000000000000000000000000000000000000000000000000000000")

	require.Equal(t, map[string]string{"status": "partial", "duration": "10m 0s", "selected": "7", "deleted": "4", "failed": "2", "skipped": "1"},
		cells(t, dom, "data-run", "11"))
	require.Equal(t, "-", cells(t, dom, "data-run", "14")["duration"])
	backlog := []string{"8", "4", "4", "6", "3", "3", "2"}
	for i, d := range []string{"2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07"} {
		require.Equal(t, backlog[i], cells(t, dom, "data-day", d)["backlog"], d)
	}
	require.Equal(t, map[string]string{"deleted": "4", "deleted_late": "0", "failed": "2", "backlog": "4", "overdue": "2"}, cells(t, dom, "data-day", "2025-03-02"))

	// The charts are there, with a mark per figure.
	require.Equal(t, 2, strings.Count(dom, "<svg"))
	require.Contains(t, dom, "<title>2025-03-02: 4 deleted</title>")
	require.Contains(t, dom, "<title>2025-03-05: 2 failed</title>")
	require.Contains(t, dom, "<title>2025-03-06: 3 overdue</title>")
	require.Contains(t, dom, "<title>2025-03-01: 8 backlog</title>")
	require.Contains(t, dom, r.Chain.Hash)

	// And it prints.
	pdf := filepath.Join(t.TempDir(), "report.pdf")
	headless(t, page, "--no-pdf-header-footer", "--print-to-pdf="+pdf)
	data, err := os.ReadFile(pdf)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(data, []byte("%PDF-")), "a PDF")
	pages := regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(data, -1)
	require.GreaterOrEqual(t, len(pages), 1)
	require.LessOrEqual(t, len(pages), 6, "the report of a week prints on a few pages")
}

func TestSessionHTMLInChromium(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ev, err := report.Session(context.Background(), b.pool, report.SessionOptions{SessionID: "a-f1"})
	require.NoError(t, err)
	page := filepath.Join(t.TempDir(), "session.html")
	var buf bytes.Buffer
	require.NoError(t, ev.Write(&buf, report.FormatHTML))
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o600))
	dom := string(headless(t, page, "--dump-dom"))
	require.Contains(t, dom, `data-character="alpha" data-state="deleted"`)
	require.Contains(t, dom, "deleted: confirmed at 2025-03-05 10:00:00Z by run 12")
	require.Equal(t, "failed", cells(t, dom, "data-deletion", "6")["status"])
	require.Equal(t, "deleted", cells(t, dom, "data-deletion", "12")["status"])
}
