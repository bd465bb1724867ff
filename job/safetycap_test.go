package job_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// runRow is what the runs table says of a run's status and the safety cap's figures.
type runRow struct {
	status                        string
	wouldSend, source, abortLimit *int64
}

func (b *bundle) runRow(t *testing.T, id int64) runRow {
	t.Helper()
	var r runRow
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT status, would_send, source_sessions, abort_limit FROM retention.runs WHERE id = $1`, id).
		Scan(&r.status, &r.wouldSend, &r.source, &r.abortLimit))
	return r
}

func ptr(n int64) *int64 { return &n }

func TestSafetyCap(t *testing.T) {
	t.Parallel()

	// capSetup: a 30-day default, 10 expired sessions and 10 fresh ones (20 in the source).
	capSetup := func(t *testing.T) *bundle {
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
		b.seed(t, "old", 10, days(40))
		b.seed(t, "new", 10, days(1))
		return b
	}

	t.Run("above the count: sends nothing, aborted with the figures", func(t *testing.T) {
		t.Parallel()
		b := capSetup(t)
		cfg := fastConfig()
		cfg.AbortAbove = 9
		sum, err := b.run(t, cfg)
		var abort *job.AbortError
		require.ErrorAs(t, err, &abort)
		require.EqualValues(t, 10, abort.Cap.WouldSend)
		require.EqualValues(t, 9, abort.Cap.Limit)
		require.ErrorContains(t, err, "would send 10 sessions, above the limit of 9 (--abort-above 9)")
		require.Equal(t, job.StatusAborted, sum.Status)
		require.True(t, sum.Cap.Aborted)
		require.Empty(t, b.fake.Requests(), "an aborted run sends nothing")
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.claims`), "and claims nothing")
		require.Equal(t, runRow{status: "aborted", wouldSend: ptr(10), abortLimit: ptr(9)}, b.runRow(t, sum.RunID))
		require.Equal(t, 20, b.count(t, `SELECT count(*) FROM retention.sessions`))
	})

	t.Run("at the count: runs, and records the figures", func(t *testing.T) {
		t.Parallel()
		b := capSetup(t)
		cfg := fastConfig()
		cfg.AbortAbove = 10
		sum, err := b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.EqualValues(t, 10, sum.Deleted)
		require.Len(t, b.fakeDeleted(), 10)
		require.Equal(t, runRow{status: "succeeded", wouldSend: ptr(10), abortLimit: ptr(10)}, b.runRow(t, sum.RunID))
	})

	t.Run("percent of the source", func(t *testing.T) {
		t.Parallel()
		b := capSetup(t)
		cfg := fastConfig()
		cfg.AbortAbovePercent = 49.9 // of 20: 9
		sum, err := b.run(t, cfg)
		var abort *job.AbortError
		require.ErrorAs(t, err, &abort)
		require.ErrorContains(t, err, "--abort-above-percent 49.9 of 20 source sessions = 9")
		require.Empty(t, b.fake.Requests())
		require.Equal(t, runRow{status: "aborted", wouldSend: ptr(10), source: ptr(20), abortLimit: ptr(9)}, b.runRow(t, sum.RunID))

		cfg.AbortAbovePercent = 50
		cfg.AbortAbove = 100 // the lower of the two limits counts
		sum, err = b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Equal(t, runRow{status: "succeeded", wouldSend: ptr(10), source: ptr(20), abortLimit: ptr(10)}, b.runRow(t, sum.RunID))
	})

	t.Run("the budget bounds what would be sent", func(t *testing.T) {
		t.Parallel()
		b := capSetup(t)
		cfg := fastConfig()
		cfg.AbortAbove = 5
		cfg.MaxDeletions = 5
		sum, err := b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.True(t, sum.BudgetReached)
		require.Len(t, b.fakeDeleted(), 5)
		require.EqualValues(t, 5, *b.runRow(t, sum.RunID).wouldSend)
	})

	t.Run("held and disabled sessions are not counted", func(t *testing.T) {
		t.Parallel()
		b := capSetup(t)
		b.exec(t, `INSERT INTO retention.holds (character_id, reason) VALUES ('old', 'case')`)
		cfg := fastConfig()
		cfg.AbortAbove = 1
		sum, err := b.run(t, cfg)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Zero(t, sum.Cap.WouldSend)
	})

	t.Run("off: no count, nothing recorded", func(t *testing.T) {
		t.Parallel()
		b := capSetup(t)
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Nil(t, sum.Cap)
		require.Equal(t, runRow{status: "succeeded"}, b.runRow(t, sum.RunID))
	})
}

func TestSourceSizeByShard(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	want := map[int]int64{}
	for i := range 12 {
		c := fmt.Sprintf("char-%d", i)
		b.seed(t, c, i+1, days(1))
		want[policy.Shard(c, 3)] += int64(i + 1)
	}
	total, err := b.store.SourceSize(context.Background(), job.Shard{Index: 0, Count: 1})
	require.NoError(t, err)
	require.EqualValues(t, 78, total)
	var sum int64
	for i := range 3 {
		n, err := b.store.SourceSize(context.Background(), job.Shard{Index: i, Count: 3})
		require.NoError(t, err)
		require.Equal(t, want[i], n, "shard %d", i)
		sum += n
	}
	require.EqualValues(t, 78, sum)
}

func TestSafetyCapConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg   job.Config
		field string
	}{
		{job.Config{AbortAbove: -1}, "abort-above"},
		{job.Config{AbortAbovePercent: -0.5}, "abort-above-percent"},
		{job.Config{AbortAbovePercent: 100.5}, "abort-above-percent"},
	} {
		var ce *job.ConfigError
		require.True(t, errors.As(c.cfg.Validate(), &ce), "%+v", c.cfg)
		require.Equal(t, c.field, ce.Field)
	}
	require.NoError(t, job.Config{AbortAbove: 1, AbortAbovePercent: 100}.Validate())
}
