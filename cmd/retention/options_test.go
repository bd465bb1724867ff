package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// With no flag and no variable, a run uses the job's own defaults: the flag table reads them,
// it does not repeat them. The rate is the one the command line sets itself (the job's zero
// rate means unlimited).
func TestRunFlagDefaultsAreTheJobs(t *testing.T) {
	t.Parallel()
	var o runOptions
	require.NoError(t, runFlags(&o).parse(nil, func(string) string { return "" }))
	got := o.jobConfig()
	want := job.Config{}.WithDefaults()
	want.Rate = job.RateDefault
	// Not flags: the job alone sets them.
	got.Logger, got.Observer, got.MaxRetryAfter = want.Logger, want.Observer, want.MaxRetryAfter
	got.MaxBuffered, got.LockCheckInterval, got.ProgressInterval = want.MaxBuffered, want.LockCheckInterval, want.ProgressInterval
	got.SealInterval = want.SealInterval
	got.MemoryConfirmWithin, got.MemoryPoll = want.MemoryConfirmWithin, want.MemoryPoll
	require.Equal(t, want, got)

	s := o.settings()
	require.Equal(t, job.RateDefault, s["rate"])
	require.Equal(t, job.ShutdownGraceDefault.String(), s["shutdown_grace"])
	require.Equal(t, job.ChunkSizeDefault, s["chunk_size"])
}

// --shutdown-grace 0 means no grace; the job spells that NoShutdownGrace, and the run records 0s.
func TestShutdownGraceZero(t *testing.T) {
	t.Parallel()
	var o runOptions
	require.NoError(t, runFlags(&o).parse([]string{"--shutdown-grace", "0"}, func(string) string { return "" }))
	require.Equal(t, job.NoShutdownGrace, o.jobConfig().ShutdownGrace)
	require.Equal(t, "0s", o.settings()["shutdown_grace"])
	require.NoError(t, o.table().check())
}

// A 0 for a setting the job would read as "its default" is refused, naming the flag; the other
// flags take 0.
func TestZeroIsRefusedWhereItMeansTheDefault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		flag    string
		refused bool
	}{
		{"chunk-size", true}, {"concurrency", true}, {"max-attempts", true}, {"page-size", true},
		{"shard-count", true}, {"backoff-base", true}, {"backoff-max", true}, {"request-timeout", true},
		{"rate", false}, {"max-deletions", false}, {"shard-index", false}, {"shutdown-grace", false},
	} {
		var o runOptions
		require.NoError(t, runFlags(&o).parse([]string{"--" + tt.flag + "=0"}, func(string) string { return "" }), tt.flag)
		err := o.table().check()
		if !tt.refused {
			require.NoError(t, err, tt.flag)
			continue
		}
		require.EqualError(t, err, "invalid --"+tt.flag+" 0: want a positive value")
		require.Equal(t, 2, codeOf(err))
	}
}
