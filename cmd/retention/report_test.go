package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/pgtest"
)

// reportAfterRun runs the job over seedWorld and returns the bundle and what it deleted.
func reportAfterRun(t *testing.T) (*bundle, []string) {
	t.Helper()
	b := setup(t)
	eligible := b.seedWorld(t)
	r := b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	return b, eligible
}

func TestReportCommandJSON(t *testing.T) {
	t.Parallel()
	b, eligible := reportAfterRun(t)
	r := b.run(t, "report", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, r.stderr)
	var doc struct {
		Until      time.Time `json:"until"`
		Since      time.Time `json:"since"`
		Characters []struct {
			CharacterID string `json:"character_id"`
			Deleted     int    `json:"deleted"`
			Held        int    `json:"held"`
			Policy      struct {
				Decision string `json:"decision"`
			} `json:"policy"`
		} `json:"characters"`
		Total struct {
			Deleted, Outstanding, Held, Overdue int
			LagP95                              *float64 `json:"lag_p95_seconds"`
		} `json:"total"`
		Runs  []struct{ Status string } `json:"runs"`
		Chain struct {
			Seq     int `json:"seq"`
			LogSize int `json:"log_size"`
		} `json:"chain"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	require.WithinDuration(t, time.Now(), doc.Until, time.Minute, "until defaults to now")
	require.Equal(t, 30*24*time.Hour, doc.Until.Sub(doc.Since), "the last 30 days")
	require.Equal(t, len(eligible), doc.Total.Deleted)
	require.Equal(t, worldSkippedHeld, doc.Total.Held)
	require.Zero(t, doc.Total.Outstanding, "everything expired is deleted or held")
	require.Zero(t, doc.Total.Overdue)
	require.NotNil(t, doc.Total.LagP95)
	require.Zero(t, doc.Chain.Seq, "no v1 seals")
	require.Positive(t, doc.Chain.LogSize, "every recorded claim is a leaf of the log")
	require.Equal(t, []struct{ Status string }{{"succeeded"}}, doc.Runs)
	byChar := map[string][3]any{}
	for _, c := range doc.Characters {
		byChar[c.CharacterID] = [3]any{c.Policy.Decision, c.Deleted, c.Held}
	}
	require.Equal(t, map[string][3]any{
		"c-def":  {"default_policy", 3, 1},
		"c-own":  {"own_policy", 2, 0},
		"c-two":  {"default_policy", 3, 0},
		"c-held": {"default_policy", 0, 2},
		"c-off":  {"disabled", 0, 0},
	}, byChar)
}

func TestReportCommandFormats(t *testing.T) {
	t.Parallel()
	b, eligible := reportAfterRun(t)

	// Not a terminal: still the table, the one default.
	r := b.run(t, "report", "--character", "c-own")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "Retention compliance report")
	require.Empty(t, r.stderr)

	r = b.run(t, "report", "--character", "c-own", "--format", "csv")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 3, "header, c-own, total")
	require.Equal(t, []string{"scope", "character_id", "policy"}, recs[0][:3])
	require.Equal(t, []string{"character", "c-own", "own_policy", "", "7 days"}, []string{recs[1][0], recs[1][1], recs[1][2], recs[1][5], recs[1][4]})
	require.Equal(t, "2", recs[1][6], "deleted")

	r = b.run(t, "report", "--format", "csv", "--table", "runs")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	recs, err = csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "succeeded", recs[1][1])

	r = b.run(t, "report", "--format", "table", "--since", time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly))
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "Retention compliance report")
	// Deleted, late (c-def's three, ten days after they expired), failed, outstanding, held, overdue.
	require.Regexp(t, `(?m)^\(total\)\s+`+strconv.Itoa(len(eligible))+`\s+3\s+0\s+0\s+`+strconv.Itoa(worldSkippedHeld)+`\s+0\s`, r.stdout)
	require.Regexp(t, `(?m)^DAY\s+DELETED`, r.stdout)
	require.Equal(t, 3, strings.Count(r.stdout, "\n20"), "three days: two ago, yesterday, today")

	// --out: the format follows the extension; the file is complete, stdout empty.
	dir := t.TempDir()
	page := filepath.Join(dir, "q1.html")
	r = b.run(t, "report", "--out", page)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "report: writing html to "+page+" (chosen by its extension .html; --format picks another)")
	html, err := os.ReadFile(page)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(html), "<!DOCTYPE html>"))
	require.Contains(t, string(html), `<tr data-character="c-own">`)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")

	out := filepath.Join(dir, "r.json")
	r = b.run(t, "report", "--out", out)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, json.Valid(data))
}

func TestReportCommandSession(t *testing.T) {
	t.Parallel()
	b, _ := reportAfterRun(t)

	r := b.run(t, "report", "--session", "c-own-old-0", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "character c-own: DELETED")
	require.Regexp(t, `deleted: confirmed at \S+ \S+ by run \d+, under policy \d+ of "c-own" version \d+ \(max_age 7 days; expired at`, r.stdout)

	r = b.run(t, "report", "--session", "c-def-old-1", "--character", "c-def", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var ev struct {
		Findings []struct {
			State      string
			ReasonCode string `json:"reason_code"`
			Hold       struct{ Reason string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.Len(t, ev.Findings, 1)
	require.Equal(t, "held", ev.Findings[0].ReasonCode)
	require.Equal(t, "support ticket", ev.Findings[0].Hold.Reason)

	r = b.run(t, "report", "--session", "c-def-new-0", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "never selected: not yet expired")

	r = b.run(t, "report", "--session", "c-off-old-0", "--format", "table")
	require.Contains(t, r.stdout, `never selected: character "c-off"'s own policy`)

	r = b.run(t, "report", "--session", "nobody-knows", "--format", "csv")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "not_found", recs[1][2])
}

func TestReportCommandLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "pdf"}, `invalid --format "pdf": want table, csv, json or html`},
		{[]string{"--table", "holds"}, `invalid --table "holds"`},
		{[]string{"--since", "yesterday"}, `invalid --since "yesterday": want a date`},
		{[]string{"--until", "2025-13-01"}, `invalid --until "2025-13-01"`},
		{[]string{"--since", "2025-03-02", "--until", "2025-03-01"}, "invalid period: --until 2025-03-02T00:00:00Z is not after --since 2025-03-02T00:00:00Z"},
		{[]string{"--sla", "0d"}, `invalid --sla "0d"`},
		{[]string{"--sla", "-5h"}, `invalid --sla "-5h"`},
		{[]string{"--session", "x", "--since", "2025-01-01"}, "--since does not apply to --session"},
		{[]string{"--source", "no_schema"}, `invalid source "no_schema"`},
		{[]string{"--source", "public.missing"}, "source public.missing: no such table or view"},
	} {
		r := b.run(t, append([]string{"report"}, tc.args...)...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", tc.args, r)
		require.Contains(t, r.stderr, tc.want, "%v", tc.args)
	}

	r := b.run(t, "report", "--help")
	require.Equal(t, exitcode.OK, r.code)
	for _, f := range []string{"--since", "--until", "--character", "--session", "--format", "--table", "--out", "--source", "--sla"} {
		require.Contains(t, r.stdout, f)
	}

	// An unmigrated database: say so, exit 2.
	empty := pgtest.NewEmpty(t)
	r = run(t, with(b.env, "DATABASE_URL", empty.URL), "report")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "retention migrate")
}

func TestReportPeriodFlags(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 4, 2, 8, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		since, until, sla string
		want              [2]string
		wantSLA           time.Duration
	}{
		{"", "", "7d", [2]string{"2025-03-03T08:30:00Z", "2025-04-02T08:30:00Z"}, 7 * 24 * time.Hour},
		{"2025-01-01", "2025-03-31", "168h", [2]string{"2025-01-01T00:00:00Z", "2025-04-01T00:00:00Z"}, 168 * time.Hour},
		{"2025-03-01T12:00:00+02:00", "2025-03-02T00:00:00Z", "36h", [2]string{"2025-03-01T10:00:00Z", "2025-03-02T00:00:00Z"}, 36 * time.Hour},
		{"", "2025-03-31", "1d", [2]string{"2025-03-02T00:00:00Z", "2025-04-01T00:00:00Z"}, 24 * time.Hour},
	} {
		o := reportOptions{since: tc.since, until: tc.until, sla: tc.sla}
		p, err := o.period(now)
		require.NoError(t, err)
		require.Equal(t, tc.want, [2]string{p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339)}, "%+v", tc)
		require.Equal(t, tc.wantSLA, p.SLA)
	}
	for _, tc := range []struct {
		format, out string
		want        string
		said        bool // on stderr: the extension chose
	}{
		{"", "", "table", false}, {"", "-", "table", false}, {"", "r.HTML", "html", true}, {"", "r.json", "json", true},
		{"", "r.txt", "table", true}, {"", "r.csv", "csv", true}, {"", "report", "table", false},
		{"text", "", "table", false}, {"csv", "r.html", "csv", false},
	} {
		o := reportOptions{format: tc.format, out: tc.out, table: "characters"}
		f, _, why, err := o.output()
		require.NoError(t, err)
		require.EqualValues(t, tc.want, f, "%+v", tc)
		require.Equal(t, tc.said, why != "", "%+v", tc)
	}
}
