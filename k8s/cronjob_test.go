package k8s

import (
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the CronJob's timeZone must load on any machine

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
)

func TestCronJob_NeverOverlapsItsNextRun(t *testing.T) {
	t.Parallel()
	cj := setup(t).base.CronJobs[0]
	spec := cj.Spec

	require.Equal(t, "convai-retention", cj.Name)
	require.Equal(t, batchv1.ForbidConcurrent, spec.ConcurrencyPolicy)
	require.NotNil(t, spec.TimeZone, "set timeZone rather than relying on the controller's zone")
	loc, err := time.LoadLocation(*spec.TimeZone)
	require.NoError(t, err, "timeZone")
	require.NotContains(t, spec.Schedule, "TZ=", "the zone belongs in timeZone, which the API server requires")

	interval := minInterval(t, spec.Schedule, loc)
	require.NotNil(t, spec.StartingDeadlineSeconds)
	starting := time.Duration(*spec.StartingDeadlineSeconds) * time.Second
	// Below 10s the controller may miss the window altogether.
	require.GreaterOrEqual(t, starting, 10*time.Second)
	require.Less(t, starting, interval)

	require.NotNil(t, spec.JobTemplate.Spec.ActiveDeadlineSeconds)
	active := time.Duration(*spec.JobTemplate.Spec.ActiveDeadlineSeconds) * time.Second
	require.Less(t, active, interval)
	// A run that starts as late as allowed still ends before the next one is due, so that Forbid
	// never has to skip a run.
	require.Less(t, starting+active, interval, "startingDeadlineSeconds + activeDeadlineSeconds")

	require.NotNil(t, spec.SuccessfulJobsHistoryLimit)
	require.NotNil(t, spec.FailedJobsHistoryLimit)
	require.Positive(t, *spec.FailedJobsHistoryLimit, "keep failed Jobs to read their logs")
	require.NotNil(t, spec.JobTemplate.Spec.BackoffLimit)
	require.LessOrEqual(t, *spec.JobTemplate.Spec.BackoffLimit, int32(8), "each retry of a fatal error reconnects")
}

func TestCronJob_RunsOneRealUnshardedRun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	job := f.base.CronJobs[0].Spec.JobTemplate.Spec
	c := container(t, job.Template.Spec)

	require.Equal(t, []string{"run"}, c.Args)
	require.Empty(t, c.Command, "the image's ENTRYPOINT runs the binary")
	require.Nil(t, job.CompletionMode)
	shards, ok := f.env(t, c, "RETENTION_SHARD_COUNT")
	require.True(t, ok)
	require.Equal(t, "1", shards, "a non-indexed Job is a single shard")
}

func TestConfigMap_HoldsOnlyTuning(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.NotEmpty(t, f.config)
	for k := range f.config {
		ok := strings.HasPrefix(k, "RETENTION_") || k == "LOG_LEVEL" || k == "CONVAI_API_URL"
		require.True(t, ok, "%s does not belong in the ConfigMap (credentials come from Secrets)", k)
	}
	_, ok := f.config["RETENTION_SHARD_INDEX"]
	require.False(t, ok, "it would override JOB_COMPLETION_INDEX in every indexed pod")
}

func TestConfigMap_ShipsASafetyCap(t *testing.T) {
	t.Parallel()
	f := setup(t)
	p, err := strconv.ParseFloat(f.config["RETENTION_ABORT_ABOVE_PERCENT"], 64)
	require.NoError(t, err, "RETENTION_ABORT_ABOVE_PERCENT")
	require.Greater(t, p, 0.0, "a scheduled run that would delete most of the source stops (exit 6)")
	require.Less(t, p, 100.0)
}

func TestBase_ShipsNoJobsAndNoSecrets(t *testing.T) {
	t.Parallel()
	base := setup(t).base
	require.Empty(t, base.Secrets, "secret values are never shipped")
	require.Empty(t, base.Jobs, "Jobs are immutable; the migration Job lives in k8s/migrate")
	require.Len(t, base.CronJobs, 1)
}

// minInterval returns the shortest time between two consecutive activations of a cron schedule
// over one year, computed with the parser the CronJob controller uses.
func minInterval(t *testing.T, schedule string, loc *time.Location) time.Duration {
	t.Helper()
	sched, err := cron.ParseStandard(schedule)
	require.NoError(t, err, "schedule %q", schedule)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, loc)
	end := start.AddDate(1, 0, 0)
	shortest := time.Duration(1<<63 - 1)
	for prev := sched.Next(start); prev.Before(end); {
		next := sched.Next(prev)
		shortest = min(shortest, next.Sub(prev))
		prev = next
	}
	return shortest
}
