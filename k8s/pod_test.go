package k8s

import (
	"path"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

func TestPodTemplates_MeetRestrictedPodSecurity(t *testing.T) {
	t.Parallel()
	f := setup(t)
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	restricted := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}

	for _, tmpl := range f.templates(t) {
		t.Run(tmpl.name, func(t *testing.T) {
			pod := tmpl.job.Template
			res := policy.AggregateCheckResults(eval.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec))
			require.True(t, res.Allowed, res.ForbiddenDetail())

			// The same, spelt out, so that a failure names the field.
			psc := pod.Spec.SecurityContext
			require.NotNil(t, psc)
			require.Equal(t, ptr.To(true), psc.RunAsNonRoot)
			require.Equal(t, ptr.To[int64](nonRootID), psc.RunAsUser)
			require.Equal(t, ptr.To[int64](nonRootID), psc.RunAsGroup)
			require.NotNil(t, psc.SeccompProfile)
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)

			csc := container(t, pod.Spec).SecurityContext
			require.NotNil(t, csc)
			require.Equal(t, ptr.To(false), csc.AllowPrivilegeEscalation)
			require.Equal(t, ptr.To(true), csc.ReadOnlyRootFilesystem)
			require.NotNil(t, csc.Capabilities)
			require.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop)
			require.Empty(t, csc.Capabilities.Add)
			require.Nil(t, csc.Privileged)
		})
	}
}

func TestPodTemplates_RunOnceAndShutDownInTime(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, tmpl := range f.templates(t) {
		t.Run(tmpl.name, func(t *testing.T) {
			spec := tmpl.job.Template.Spec
			require.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy, "podFailurePolicy needs restartPolicy Never")
			require.Equal(t, ptr.To(false), spec.AutomountServiceAccountToken, "the job does not talk to the Kubernetes API")

			c := container(t, spec)
			grace, ok := f.env(t, c, "RETENTION_SHUTDOWN_GRACE")
			if !ok {
				grace = defaultGrace
			}
			d, err := time.ParseDuration(grace)
			require.NoError(t, err, "RETENTION_SHUTDOWN_GRACE")
			require.NotNil(t, spec.TerminationGracePeriodSeconds)
			require.Greater(t, *spec.TerminationGracePeriodSeconds, int64(d.Seconds())+writeRetryS+graceHeadroomS,
				"after SIGTERM the pod needs the shutdown grace (%s), the record writes' retries (%ds) and time to exit", d, writeRetryS)

			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
				req, ok := c.Resources.Requests[name]
				require.True(t, ok, "%s request", name)
				limit, ok := c.Resources.Limits[name]
				require.True(t, ok, "%s limit", name)
				require.True(t, req.Sign() > 0, "%s request", name)
				require.LessOrEqual(t, req.Cmp(limit), 0, "%s request above its limit", name)
			}
		})
	}
}

func TestPodTemplates_TakeCredentialsOnlyFromSecrets(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, tmpl := range f.templates(t) {
		t.Run(tmpl.name, func(t *testing.T) {
			spec := tmpl.job.Template.Spec
			c := container(t, spec)

			var db *corev1.EnvVar
			for i, e := range c.Env {
				require.NotEqual(t, "CONVAI_API_KEY", e.Name, "the key is read from a file, never an env var")
				if e.Name == "DATABASE_URL" {
					db = &c.Env[i]
				}
			}
			require.NotNil(t, db, "DATABASE_URL")
			require.Empty(t, db.Value, "DATABASE_URL must come from a Secret")
			require.NotNil(t, db.ValueFrom)
			require.NotNil(t, db.ValueFrom.SecretKeyRef)
			require.Equal(t, tmpl.dbSecret, db.ValueFrom.SecretKeyRef.Name)
			require.Equal(t, dbSecretKey, db.ValueFrom.SecretKeyRef.Key)

			keyFile, ok := f.env(t, c, "CONVAI_API_KEY_FILE")
			if !tmpl.deletes {
				require.False(t, ok, "a pod that does not call the API gets no key")
				require.Empty(t, spec.Volumes)
				require.Empty(t, c.VolumeMounts)
				return
			}
			require.True(t, ok, "CONVAI_API_KEY_FILE")
			require.Equal(t, keyFile, apiKeyPath(t, spec, c))
		})
	}
}

// apiKeyPath returns the path at which the API key Secret's key is mounted, read-only.
func apiKeyPath(t *testing.T, spec corev1.PodSpec, c corev1.Container) string {
	t.Helper()
	require.Len(t, spec.Volumes, 1)
	vol := spec.Volumes[0]
	require.NotNil(t, vol.Secret, "the key volume is a Secret")
	require.Equal(t, keySecretName, vol.Secret.SecretName)
	require.Len(t, vol.Secret.Items, 1)
	require.Equal(t, keySecretKey, vol.Secret.Items[0].Key)
	require.Nil(t, vol.Secret.Optional)
	require.Equal(t, ptr.To[int32](0o440), vol.Secret.DefaultMode)
	require.Equal(t, ptr.To[int64](nonRootID), spec.SecurityContext.FSGroup, "the key file is readable by its group")

	require.Len(t, c.VolumeMounts, 1)
	m := c.VolumeMounts[0]
	require.Equal(t, vol.Name, m.Name)
	require.True(t, m.ReadOnly)
	require.Empty(t, m.SubPath)
	return path.Join(m.MountPath, vol.Secret.Items[0].Path)
}

func TestJobs_FailFastOnExitCodesThatRetriesCannotFix(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// The API server wants the codes sorted.
	// Partial: the failures are recorded and the next scheduled run sends them again; a retry now
	// would repeat the same refusals. Locked is not here: it is retried (TestJobs_RetryALockedRun).
	failJobCodes := []int32{exitcode.Partial, exitcode.Usage, exitcode.KeyRejected, exitcode.Aborted}
	slices.Sort(failJobCodes)
	want := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{
			Action: batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: ptr.To(containerName),
				Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
				Values:        failJobCodes,
			},
		},
		{
			Action: batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
			},
		},
	}}
	for _, tmpl := range f.templates(t) {
		t.Run(tmpl.name, func(t *testing.T) {
			// Any other exit code (Locked, Fatal, Terminated, ...) counts against the backoff limit.
			require.Equal(t, want, tmpl.job.PodFailurePolicy)
		})
	}
}

// jobBackoff is the Job controller's delay before the n-th retry of a failed pod: 10s, doubling,
// at most 6 minutes.
func jobBackoff(n int) time.Duration {
	return min(10*time.Second<<(n-1), 6*time.Minute)
}

// TestJobs_RetryALockedRun checks that exit 3 (another run, e.g. a manual one, holds the lock) is
// retried for several minutes, within the deadline, instead of failing the Job at once.
func TestJobs_RetryALockedRun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, tc := range []struct {
		name    string
		job     batchv1.JobSpec
		retries *int32
	}{
		{"base CronJob", f.base.CronJobs[0].Spec.JobTemplate.Spec, f.base.CronJobs[0].Spec.JobTemplate.Spec.BackoffLimit},
		{"sharded Job", f.sharded.Jobs[0].Spec, f.sharded.Jobs[0].Spec.BackoffLimitPerIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range tc.job.PodFailurePolicy.Rules {
				if r.OnExitCodes != nil {
					require.NotContains(t, r.OnExitCodes.Values, int32(exitcode.Locked))
				}
			}
			require.NotNil(t, tc.retries)
			var span time.Duration
			for n := 1; n <= int(*tc.retries); n++ {
				span += jobBackoff(n)
			}
			require.GreaterOrEqual(t, span, 5*time.Minute, "a lock held for a few minutes must not fail the Job")
			require.NotNil(t, tc.job.ActiveDeadlineSeconds)
			require.Less(t, span, time.Duration(*tc.job.ActiveDeadlineSeconds)*time.Second/4,
				"the retries leave most of the deadline to the run")
		})
	}
}
