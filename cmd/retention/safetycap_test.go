package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// seedWorld has 8 sessions to send among 16 in the source.

func TestSafetyCapExit6(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gate.release()
	b.seedWorld(t)

	r := run(t, with(b.env, "RETENTION_ABORT_ABOVE", "7"), "run")
	require.Equal(t, exitcode.Aborted, r.code, r)
	require.Contains(t, r.stdout, "aborted: its policies would send 8 sessions, above the safety cap of 7, so none of them was sent")
	require.Contains(t, r.stdout, "ABORTED by the safety cap: nothing was sent")
	require.Contains(t, r.stderr, "would send 8 sessions, above the limit of 7 (--abort-above 7)")
	require.Empty(t, b.fakeDeleted())
	require.Empty(t, b.gate.received)
	require.Equal(t, []string{"aborted 8 7 7"}, b.strings(t,
		`SELECT status || ' ' || would_send || ' ' || abort_limit || ' ' || (settings->>'abort_above') FROM retention.runs`))

	// The flag wins over the environment; at the limit the run goes ahead.
	r = run(t, with(b.env, "RETENTION_ABORT_ABOVE", "7"), "run", "--abort-above", "8")
	require.Equal(t, exitcode.OK, r.code, r)
	require.Contains(t, r.stdout, "safety cap: 8 to send, limit 8 (--abort-above 8)")
	require.Len(t, b.fakeDeleted(), 8)
}

func TestSafetyCapPercentJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gate.release()
	b.seedWorld(t)

	r := run(t, with(b.env, "RETENTION_ABORT_ABOVE_PERCENT", "40"), "run", "--output", "json") // 40% of 16 = 6
	require.Equal(t, exitcode.Aborted, r.code, r)
	var sum struct {
		Status string `json:"status"`
		Cap    struct {
			WouldSend      int64   `json:"would_send"`
			SourceSessions int64   `json:"source_sessions"`
			Limit          int64   `json:"limit"`
			Percent        float64 `json:"abort_above_percent"`
			Aborted        bool    `json:"aborted"`
		} `json:"safety_cap"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum), r.stdout)
	require.Equal(t, "aborted", sum.Status)
	require.EqualValues(t, 8, sum.Cap.WouldSend)
	require.EqualValues(t, 16, sum.Cap.SourceSessions)
	require.EqualValues(t, 6, sum.Cap.Limit)
	require.InDelta(t, 40, sum.Cap.Percent, 0)
	require.True(t, sum.Cap.Aborted)
	require.Empty(t, b.fakeDeleted())
	require.Equal(t, []string{"aborted 8 16 6"}, b.strings(t,
		`SELECT status || ' ' || would_send || ' ' || source_sessions || ' ' || abort_limit FROM retention.runs`))
}

func TestSafetyCapBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"run", "--abort-above", "-1"}, nil, "invalid --abort-above -1"},
		{[]string{"run", "--abort-above-percent", "101"}, nil, "invalid --abort-above-percent 101"},
		{[]string{"run", "--abort-above-percent", "lots"}, nil, "abort-above-percent"},
		{[]string{"run"}, []string{"RETENTION_ABORT_ABOVE", "ten"}, "RETENTION_ABORT_ABOVE"},
	} {
		r := run(t, with(b.env, c.env...), c.args...)
		require.Equal(t, exitcode.Usage, r.code, r)
		require.Contains(t, r.stderr, c.want, r)
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs`), "bad input changes nothing")
	require.Empty(t, b.fakeDeleted())
}

func TestHelpNamesTheSafetyCap(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "help")
	require.Equal(t, 0, r.code)
	for _, want := range []string{"--abort-above ", "--abort-above-percent", "RETENTION_ABORT_ABOVE_PERCENT",
		"6    the safety cap stopped the run"} {
		require.Contains(t, r.stdout, want)
	}
}

// A capped run takes its progress total from the cap's count: no second pass beside the run.
func TestSafetyCapCountIsTheEstimate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	r := run(t, with(b.env, "RETENTION_ABORT_ABOVE", "100"), "run")
	require.Equal(t, exitcode.OK, r.code, r)
	require.Contains(t, r.stderr, `"msg":"estimated the sessions this run will send","total":8,"from":"safety cap count"`)
	require.Equal(t, 1, strings.Count(r.stderr, "estimated the sessions this run will send"), "one estimate, from the cap")
}
