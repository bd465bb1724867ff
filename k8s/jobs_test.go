package k8s

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
)

func TestMigrateJob_OnlyMigrates(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Empty(t, f.migrate.CronJobs)
	require.Empty(t, f.migrate.ConfigMaps, "k8s/base owns the ConfigMap")
	require.Empty(t, f.migrate.Secrets)
	job := f.migrate.Jobs[0]
	require.Equal(t, "convai-retention-migrate", job.Name)
	c := container(t, job.Spec.Template.Spec)
	require.Equal(t, []string{"migrate"}, c.Args)
	require.Len(t, c.EnvFrom, 1)
	require.Equal(t, ptr.To(true), c.EnvFrom[0].ConfigMapRef.Optional, "migrate runs before k8s/base is applied")
	require.NotNil(t, job.Spec.TTLSecondsAfterFinished, "a finished Job must not block the next upgrade forever")
}

func TestShardedJob_HasOneShardPerIndex(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Empty(t, f.sharded.ConfigMaps, "k8s/base owns the ConfigMap")
	require.Empty(t, f.sharded.Secrets)
	job := f.sharded.Jobs[0].Spec
	c := container(t, job.Template.Spec)

	require.Equal(t, ptr.To(batchv1.IndexedCompletion), job.CompletionMode)
	require.NotNil(t, job.Completions)
	require.NotNil(t, job.Parallelism)
	v, ok := f.env(t, c, "RETENTION_SHARD_COUNT")
	require.True(t, ok, "RETENTION_SHARD_COUNT")
	shards, err := strconv.Atoi(v)
	require.NoError(t, err, "RETENTION_SHARD_COUNT")
	require.Greater(t, shards, 1)
	require.Equal(t, int32(shards), *job.Completions, "completions == RETENTION_SHARD_COUNT")
	require.Equal(t, int32(shards), *job.Parallelism, "parallelism == RETENTION_SHARD_COUNT")

	// Each pod takes its index from JOB_COMPLETION_INDEX, which Kubernetes sets per pod; a value
	// fixed here would send every pod to the same shard.
	require.Equal(t, []string{"run"}, c.Args)
	for _, name := range []string{"JOB_COMPLETION_INDEX", "RETENTION_SHARD_INDEX"} {
		_, ok := f.env(t, c, name)
		require.False(t, ok, name)
	}
	require.NotNil(t, job.BackoffLimitPerIndex)
	require.LessOrEqual(t, *job.BackoffLimitPerIndex, int32(8))
	require.NotNil(t, job.ActiveDeadlineSeconds)
}

func TestDryRunJob_CannotBeTakenForARealRun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Len(t, f.dryRun.Jobs, 1)
	require.Empty(t, f.dryRun.CronJobs)
	require.Empty(t, f.dryRun.ConfigMaps)
	require.Empty(t, f.dryRun.Secrets)
	job := f.dryRun.Jobs[0]
	c := container(t, job.Spec.Template.Spec)

	require.Equal(t, []string{"run", "--dry-run", "--format", "text"}, c.Args)
	require.Empty(t, c.Command)
	_, ok := f.env(t, c, "CONVAI_API_KEY_FILE")
	require.False(t, ok, "without a key it cannot delete, whatever its arguments")
	require.Empty(t, job.Spec.Template.Spec.Volumes)

	require.Empty(t, job.Name, "created with kubectl create, each under a new name")
	require.True(t, strings.HasPrefix(job.GenerateName, "convai-retention-dry-run-"), job.GenerateName)
	require.Equal(t, "dry-run", job.Labels["app.kubernetes.io/component"])
	require.Equal(t, "dry-run", job.Spec.Template.Labels["app.kubernetes.io/component"])
	require.Equal(t, ptr.To[int32](0), job.Spec.BackoffLimit, "one pod, one log to read")
}

func TestManifests_UseOneImage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var images []string
	for _, tmpl := range f.templates(t) {
		c := container(t, tmpl.job.Template.Spec)
		require.Contains(t, c.Image, ":", "%s: image without a tag", tmpl.name)
		require.False(t, strings.HasSuffix(c.Image, ":latest"), "%s: pin the image", tmpl.name)
		images = append(images, c.Image)
	}
	require.Len(t, slices.Compact(images), 1, "every manifest runs the same image: %v", images)
}
