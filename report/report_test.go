package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/report"
)

const (
	hour = 3600.0
	day  = 24 * hour
)

func f(v float64) *float64 { return &v }
func i64(v int64) *int64   { return &v }

// row is the figures of one character, as the test expects them.
type row struct {
	policy                                      string
	deleted, failed, outstanding, held, overdue int64
	p50, p95, max                               *float64
}

func figures(c report.CharacterRow) row {
	return row{c.Policy.String(), c.Deleted, c.Failed, c.Outstanding, c.Held, c.Overdue, c.LagP50, c.LagP95, c.LagMax}
}

func TestReportFigures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := build(t, b, report.Options{})

	got := map[string]row{}
	var order []string
	for _, c := range r.Characters {
		got[c.CharacterID] = figures(c)
		order = append(order, c.CharacterID)
	}
	require.Equal(t, []string{"alpha", "beta", "gamma", "off"}, order,
		"characters with outcomes, waiting sessions or an own policy, sorted")
	require.Equal(t, map[string]row{
		// Deleted a-d1..a-d4 and a-f1: lags 1h 2h 3h 4h 3d22h. Nearest rank: p50 the 3rd, p95 the 5th.
		// Failed and not deleted: a-f2 (twice: once). Outstanding: a-f2, a-out1, a-out2; overdue
		// (expired > 7 days ago): a-f2, a-out1. Held: a-held.
		"alpha": {"default policy 1: 30 days", 5, 1, 3, 1, 2, f(3 * hour), f(3*day + 22*hour), f(3*day + 22*hour)},
		// Deleted b-d1, b-d2, b-late: 30m, 90m, 8d30m. Failed: b-f1, which is outstanding and
		// overdue; b-out1 expired a day ago.
		"beta": {"own policy 2: 7 days", 3, 1, 2, 0, 1, f(1.5 * hour), f(8*day + 0.5*hour), f(8*day + 0.5*hour)},
		// Held as a whole.
		"gamma": {"default policy 1: 30 days; held by hold 2", 0, 0, 0, 2, 0, nil, nil, nil},
		// Its own policy is disabled: never deleted, never waiting.
		"off": {"own policy 3 disabled: never", 0, 0, 0, 0, 0, nil, nil, nil},
	}, got)

	// Eight deletions: 30m 1h 90m 2h 3h 4h 3d22h 8d30m. p50 is the 4th (2h), p95 the 8th.
	require.Equal(t, row{"", 8, 2, 5, 3, 3, f(2 * hour), f(8*day + 0.5*hour), f(8*day + 0.5*hour)}, figures(r.Total))
	require.Nil(t, r.Total.Policy)

	// Deleted late: confirmed more than the SLA (7 days) after expiry. Only b-late, 8d 30m after.
	late := map[string]int64{}
	for _, c := range r.Characters {
		late[c.CharacterID] = c.DeletedLate
	}
	require.Equal(t, map[string]int64{"alpha": 0, "beta": 1, "gamma": 0, "off": 0}, late)
	require.EqualValues(t, 1, r.Total.DeletedLate)

	// Runs that started in the period, with their duration; run 13 started before it.
	require.Len(t, r.Runs, 3)
	type run struct {
		id       int64
		status   string
		duration *float64
		counts   [4]int64
	}
	var runs []run
	for _, x := range r.Runs {
		runs = append(runs, run{x.RunID, x.Status, x.DurationSeconds, [4]int64{x.Selected, x.Deleted, x.Failed, x.Skipped}})
	}
	require.Equal(t, []run{
		{11, "partial", f(600), [4]int64{7, 4, 2, 1}},
		{12, "partial", f(90), [4]int64{5, 3, 2, 1}},
		{14, "running", nil, [4]int64{}},
	}, runs)
	require.Nil(t, r.Runs[2].FinishedAt)
	require.Equal(t, time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC), r.Runs[2].StartedAt)

	// Days: outcomes by completion; the backlog at each day's end is three sessions waiting from
	// before the period (b-late, a-f2, b-f1) plus what expired and was not yet deleted.
	require.Equal(t, []report.DayRow{
		{Day: "2025-03-01", Deleted: 0, Failed: 0, Backlog: 8, Overdue: 2}, // + a-d1 a-d2 a-d3 a-f1 b-d1
		{Day: "2025-03-02", Deleted: 4, Failed: 2, Backlog: 4, Overdue: 2}, // - a-d1 a-d2 a-d3 b-d1
		{Day: "2025-03-03", Deleted: 0, Failed: 0, Backlog: 4, Overdue: 2},
		{Day: "2025-03-04", Deleted: 0, Failed: 0, Backlog: 6, Overdue: 2},                 // + a-d4 b-d2
		{Day: "2025-03-05", Deleted: 3, Failed: 2, Backlog: 3, Overdue: 2},                 // - a-d4 a-f1 b-d2
		{Day: "2025-03-06", Deleted: 0, Failed: 0, Backlog: 3, Overdue: 3},                 // b-late past the SLA at 12:00
		{Day: "2025-03-07", Deleted: 1, Failed: 0, Backlog: 2, Overdue: 2, DeletedLate: 1}, // - b-late, 8d 30m after its expiry
	}, r.Days)

	require.EqualValues(t, 13, r.Chain.Seq, "thirteen final outcomes are sealed")
	require.Len(t, r.Chain.Hash, 64)
	require.Equal(t, "retention.sessions", r.Source)
	require.EqualValues(t, 7*day, r.SLASeconds)
	require.WithinDuration(t, time.Now(), r.GeneratedAt, time.Minute)
}

func TestReportOneCharacterAndAnotherSLA(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// With an SLA of 5 days, a-out2 (expired 3 days ago) is still not overdue; with 2 days it is.
	r := build(t, b, report.Options{Character: "alpha", SLA: 2 * 24 * time.Hour})
	require.Len(t, r.Characters, 1)
	require.Equal(t, row{"default policy 1: 30 days", 5, 1, 3, 1, 3, f(3 * hour), f(3*day + 22*hour), f(3*day + 22*hour)},
		figures(r.Characters[0]))
	require.Equal(t, r.Characters[0].Deleted, r.Total.Deleted)
	require.Equal(t, r.Characters[0].LagP95, r.Total.LagP95)
	require.Len(t, r.Runs, 3, "runs are not narrowed to a character")
	var deleted, failed int64
	for _, d := range r.Days {
		deleted += d.Deleted
		failed += d.Failed
	}
	require.EqualValues(t, 5, deleted)
	require.EqualValues(t, 3, failed, "a-f1 once, a-f2 twice")
	// With 2 days, a-f1 (3d 22h after its expiry, deleted on 03-05) was deleted late.
	require.EqualValues(t, 1, r.Total.DeletedLate)
	require.EqualValues(t, 1, r.Characters[0].DeletedLate)
	late := map[string]int64{}
	for _, d := range r.Days {
		if d.DeletedLate > 0 {
			late[d.Day] = d.DeletedLate
		}
	}
	require.Equal(t, map[string]int64{"2025-03-05": 1}, late)
	// Alpha's backlog: a-f2 from before; + a-d1 a-d2 a-d3 a-f1 on 03-01; - a-d1..3 on 03-02;
	// + a-d4 on 03-04; - a-d4 a-f1 on 03-05. Overdue with 2 days: a-f2 before; a-f1 from 03-03 12:00
	// to 03-05 10:00; a-d4 never.
	var backlog, overdue []int64
	for _, d := range r.Days {
		backlog = append(backlog, d.Backlog)
		overdue = append(overdue, d.Overdue)
	}
	require.Equal(t, []int64{5, 2, 2, 3, 1, 1, 1}, backlog)
	require.Equal(t, []int64{1, 1, 2, 2, 1, 1, 1}, overdue)

	// A character with nothing at all still gets its row.
	r = build(t, b, report.Options{Character: "nobody"})
	require.Len(t, r.Characters, 1)
	require.Equal(t, row{"default policy 1: 30 days", 0, 0, 0, 0, 0, nil, nil, nil}, figures(r.Characters[0]))
}

// The report and the views a BI tool reads cannot disagree.
func TestReportAgreesWithTheViews(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := build(t, b, report.Options{})
	ctx := context.Background()

	rows, err := b.pool.Query(ctx, `
		SELECT day::text, sum(deleted)::bigint, sum(failed)::bigint FROM retention.daily_deletions
		WHERE day >= '2025-03-01' AND day < '2025-03-08' GROUP BY day ORDER BY day`)
	require.NoError(t, err)
	daily := map[string][2]int64{}
	var d string
	var del, fail int64
	_, err = pgx.ForEachRow(rows, []any{&d, &del, &fail}, func() error { daily[d] = [2]int64{del, fail}; return nil })
	require.NoError(t, err)
	for _, day := range r.Days {
		require.Equal(t, daily[day.Day], [2]int64{day.Deleted, day.Failed}, day.Day)
	}

	var p50, p95 float64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT lag_p50_seconds, lag_p95_seconds FROM retention.daily_deletions
		WHERE day = '2025-03-02' AND character_id = 'alpha'`).Scan(&p50, &p95))
	require.Equal(t, []float64{2 * hour, 3 * hour}, []float64{p50, p95}, "a-d1 a-d2 a-d3: 1h 2h 3h")

	var outstanding, held, overdue int64
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE NOT held), count(*) FILTER (WHERE held),
		       count(*) FILTER (WHERE NOT held AND expired_for > interval '7 days')
		FROM retention.expired_sessions`).Scan(&outstanding, &held, &overdue))
	require.Equal(t, []int64{r.Total.Outstanding, r.Total.Held, r.Total.Overdue}, []int64{outstanding, held, overdue})

	var runs int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM retention.run_history
		WHERE started_at >= '2025-03-01' AND started_at < '2025-03-08'`).Scan(&runs))
	require.Len(t, r.Runs, runs)
}

// The live counts follow the job's rules on any source: a view with duplicate, later and
// undated rows.
func TestReportReadsAnotherSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `
		CREATE SCHEMA app;
		CREATE TABLE app.chats (bot text, sid text, seen timestamptz);
		CREATE VIEW app.src AS SELECT bot AS character_id, sid AS session_id, seen AS last_active_at FROM app.chats;
		INSERT INTO app.chats VALUES
			('alpha', 'x-old', now() - interval '60 days'),
			('alpha', 'x-old', now() - interval '60 days'),
			('alpha', 'x-later', now() - interval '60 days'),
			('alpha', 'x-later', now() - interval '1 day'),
			('alpha', 'x-undated', now() - interval '60 days'),
			('alpha', 'x-undated', NULL),
			('alpha', NULL, now() - interval '60 days'),
			('beta', 'y-old', now() - interval '10 days')`)
	r := build(t, b, report.Options{Source: pgx.Identifier{"app", "src"}})
	got := map[string][3]int64{}
	for _, c := range r.Characters {
		got[c.CharacterID] = [3]int64{c.Outstanding, c.Held, c.Overdue}
	}
	require.Equal(t, [3]int64{1, 0, 1}, got["alpha"], "x-old once; x-later and x-undated never expire")
	require.Equal(t, [3]int64{1, 0, 0}, got["beta"], "expired 3 days ago under beta's 7 days")
	require.Equal(t, [3]int64{0, 0, 0}, got["gamma"])
}

func TestReportRejectsAnEmptyPeriod(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := report.Build(context.Background(), b.pool, report.Options{Since: until, Until: since})
	require.ErrorContains(t, err, "empty period")
}
