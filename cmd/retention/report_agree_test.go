package main

import (
	"encoding/json"
	"html"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/report/reporttest"
)

// seedV1 records two deletions of character c-old through the v1 protocol (before recording
// v2), three days ago, 17 days after the sessions expired under the default policy: late, and
// sealed by the v1 chain.
func (b *bundle) seedV1(t *testing.T) {
	t.Helper()
	b.exec(t, `
		INSERT INTO retention.runs (id, status, started_at, finished_at, cutoff, source, selected, deleted, failed, skipped)
		OVERRIDING SYSTEM VALUE VALUES (900, 'succeeded', now() - interval '3 days', now() - interval '3 days' + interval '1 minute',
		                                now() - interval '3 days', 'retention.sessions', 2, 2, 0, 0);
		INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, policy_id, policy_character_id, max_age, requested_at)
		SELECT 900, 'c-old', 'c-old-' || i, now() - interval '50 days', p.id, p.character_id, p.max_age, now() - interval '3 days'
		FROM retention.policies p, generate_series(0, 1) i WHERE p.character_id IS NULL;
		UPDATE retention.deletions_v1 SET status = 'deleted', attempts = 1, http_status = 200,
		       completed_at = now() - interval '3 days' + interval '30 seconds'
		WHERE run_id = 900`)
}

var (
	// commandInHTML is any command an HTML report shows, a check or a mention.
	commandInHTML = regexp.MustCompile(`<code[^>]*>(retention [a-z][^<]*)</code>`)
	// commandInText is any command the table mentions.
	commandInText = regexp.MustCompile(`retention [a-z]`)
	verifyLogLine = regexp.MustCompile(`(?m)^log  (\d+) leaves, root ([0-9a-f]{64});`)
)

// One database, four formats: they state the same figures (log and v1 chain, counts, late,
// overdue, verification, erasure requests, holds that match nothing), and every command any of
// them prints runs, exit 0, against that database. Once with the log only (every database since
// migration 004: the HTML used to tell its reader to run audit verify --checkpoint 0:000…), once
// with v1 seals too.
func TestReportFormatsAgreeAndTheirCommandsRun(t *testing.T) {
	t.Parallel()
	t.Run("log only", func(t *testing.T) {
		t.Parallel()
		testReportFormatsAgree(t, false)
	})
	t.Run("log and v1 chain", func(t *testing.T) {
		t.Parallel()
		testReportFormatsAgree(t, true)
	})
}

func testReportFormatsAgree(t *testing.T, v1 bool) {
	b := setup(t)
	b.seedWorld(t)
	if v1 {
		b.seedV1(t)
	}
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES
		('c-def ', NULL, 'a typo: a trailing space'), ('c-own', 'c-own-gone', 'ticket 7')`)
	for _, args := range [][]string{
		{"erase", "--character", "c-off", "--reason", "ticket 41"},                               // completed by the run
		{"erase", "--character", "c-held", "--session", "c-held-old-0", "--reason", "ticket 43"}, // blocked by hold 1
		{"run"},
	} {
		r := b.run(t, args...)
		require.Equal(t, exitcode.OK, r.code, "%v: %s", args, r)
	}
	b.witnesses(t)
	r := b.run(t, "verify")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	b.seed(t, "c-two", "stale", 1, 40) // expired 10 days ago: overdue now
	b.seed(t, "c-two", "fresh", 1, 32) // expired 2 days ago: outstanding, not overdue

	// The run's warning names the holds that match nothing.
	r = b.run(t, "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var dry struct {
		UnmatchedHolds []string `json:"unmatched_holds"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &dry))

	now := time.Now().UTC()
	period := []string{"report", "--since", now.AddDate(0, 0, -29).Format(time.DateOnly), "--until", now.AddDate(0, 0, 1).Format(time.DateOnly)}
	out := func(args ...string) string {
		t.Helper()
		r := b.run(t, append(append([]string{}, period...), args...)...)
		require.Equal(t, exitcode.OK, r.code, "%v: %s", args, r)
		require.Empty(t, r.stderr)
		return r.stdout
	}
	text, page, doc := out("--format", "table"), out("--format", "html"), out("--format", "json")
	tables := map[report.CSVTable]string{}
	for _, tbl := range report.CSVTables {
		tables[tbl] = out("--format", "csv", "--table", string(tbl))
	}

	all := map[string]reporttest.Figures{}
	var err error
	all["table"], err = reporttest.FromText(text)
	require.NoError(t, err, "%s", text)
	all["html"], err = reporttest.FromHTML(page)
	require.NoError(t, err)
	all["csv"], err = reporttest.FromCSV(tables)
	require.NoError(t, err)
	want, err := reporttest.FromJSON([]byte(doc))
	require.NoError(t, err)
	for name, got := range all {
		require.Equal(t, want, got, "%s states other figures than json", name)
	}

	// What they agree on is what happened.
	var rep report.Report
	require.NoError(t, json.Unmarshal([]byte(doc), &rep))
	require.Positive(t, want.LogSize, "every recorded claim is a leaf of the log")
	// Deleted: 8 by the policies and c-off's 2 by erasure request 1 (and c-old's 2 in v1). Late:
	// c-def's 3, 10 days after expiry (and c-old's 2, 17 days); an erasure's deletion is never late.
	characters := map[string][6]int64{
		"c-def": {3, 3, 0, 0, 1, 0}, "c-held": {0, 0, 0, 0, 2, 0}, "c-off": {2, 0, 0, 0, 0, 0},
		"c-own": {2, 0, 0, 0, 0, 0}, "c-two": {3, 0, 0, 2, 0, 1}, reporttest.Total: {10, 3, 0, 2, 3, 1},
	}
	deleted, late, runs := int64(10), int64(3), 1
	if v1 {
		require.EqualValues(t, 2, want.ChainSeq, "two v1 seals")
		require.Equal(t, []string{"retention audit verify --checkpoint 2:" + rep.Chain.Hash}, want.Checks)
		characters["c-old"] = [6]int64{2, 2, 0, 0, 0, 0}
		characters[reporttest.Total] = [6]int64{12, 5, 0, 2, 3, 1}
		deleted, late, runs = 12, 5, 2
	} else {
		require.Zero(t, want.ChainSeq)
		require.Equal(t, []string{"retention audit verify"}, want.Checks, "no v1 seal, no v1 checkpoint")
		require.NotContains(t, page, "0:0000000000000000000000000000000000000000000000000000000000000000")
	}
	require.Equal(t, [3]int64{1, late, deleted}, [3]int64{want.Overdue, want.Late, want.Deleted})
	require.Equal(t, characters, want.Characters)
	var daysLate int64
	for _, d := range want.Days {
		daysLate += d[1]
	}
	require.Equal(t, late, daysLate, "the days' late deletions add up to the total's")
	require.Equal(t, runs, want.Runs, "the run (and run 900)")
	require.Equal(t, [7]int64{deleted, deleted, 0, 0, 0, 0, 0}, want.Verification[reporttest.Total], "every deletion verified absent")
	require.Equal(t, [4]int64{0, 0, 1, 1}, want.ErasureTotals)
	require.Equal(t, map[int64]string{1: "completed", 2: "blocked"}, want.Erasures)
	require.Equal(t, []int64{3, 4}, want.UnmatchedHolds)
	names := make([]string, len(rep.UnmatchedHolds))
	for i, h := range rep.UnmatchedHolds {
		names[i] = h.Name()
	}
	require.Equal(t, dry.UnmatchedHolds, names, "the report lists the holds the run warns about")
	require.Equal(t, []string{"c-def ", "c-own/c-own-gone"}, names)

	// Every command printed, by any format, runs. The table mentions commands only on its check
	// lines; the HTML shows each in a <code>.
	commands := map[string]bool{}
	for _, f := range all {
		for _, c := range f.Checks {
			commands[c] = true
		}
	}
	for i, line := range strings.Split(text, "\n") {
		if commandInText.MatchString(line) {
			require.True(t, strings.HasPrefix(line, "check  "), "line %d of the table mentions a command off a check line: %q", i+1, line)
		}
	}
	for _, m := range commandInHTML.FindAllStringSubmatch(page, -1) {
		commands[html.UnescapeString(m[1])] = true
	}
	require.GreaterOrEqual(t, len(commands), 2, "the check, and retention verify named in the definitions: %v", commands)
	for c := range commands {
		r := b.run(t, strings.Fields(c)[1:]...)
		require.Equal(t, exitcode.OK, r.code, "%q, printed by the report: %s", c, r)
		if strings.HasPrefix(c, "retention audit verify") {
			m := verifyLogLine.FindStringSubmatch(r.stdout)
			require.NotNil(t, m, "%s", r.stdout)
			require.Equal(t, []string{m[1], m[2]}, []string{strconv.FormatInt(want.LogSize, 10), want.LogRoot}, "audit verify finds the log the report stated")
		}
	}
}
