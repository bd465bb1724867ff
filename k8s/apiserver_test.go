package k8s

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

const tinyCronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: tiny
spec:
  schedule: "0 3 * * *"
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 2
      podFailurePolicy:
        rules:
          - action: FailJob
            onExitCodes:
              containerName: retention
              operator: In
              values: [2, 3, 4]
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: retention
              image: example/retention:1
`

// validateTiny runs tinyCronJob with old replaced by new through ValidateCreate.
func validateTiny(t *testing.T, old, new string) error {
	t.Helper()
	doc := strings.Replace(tinyCronJob, old, new, 1)
	if old != new {
		require.NotEqual(t, tinyCronJob, doc, "%q is not in the manifest", old)
	}
	return ValidateCreate([]byte(doc))
}

func TestValidateCreate_AcceptsAValidCronJob(t *testing.T) {
	t.Parallel()
	require.NoError(t, validateTiny(t, "", ""))
}

// Each of these is refused by the API server, though it decodes into the k8s.io/api types.
func TestValidateCreate_RefusesWhatTheAPIServerRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, old, new, wantErr string
	}{
		{"unknown time zone", "timeZone: Etc/UTC", "timeZone: Europe/Atlantis", "spec.timeZone"},
		{"time zone in the schedule", `schedule: "0 3 * * *"`, `schedule: "CRON_TZ=Etc/UTC 0 3 * * *"`, "spec.schedule"},
		{"concurrencyPolicy Never", "concurrencyPolicy: Forbid", "concurrencyPolicy: Never", "spec.concurrencyPolicy"},
		{"negative backoffLimit", "backoffLimit: 2", "backoffLimit: -1", "spec.jobTemplate.spec.backoffLimit"},
		{"exit code 0 with In", "values: [2, 3, 4]", "values: [0, 2, 3]", "onExitCodes.values[0]"},
		{"exit codes unsorted", "values: [2, 3, 4]", "values: [3, 2, 4]", "must be ordered"},
		{"podFailurePolicy with restartPolicy OnFailure", "restartPolicy: Never", "restartPolicy: OnFailure", "restartPolicy"},
		{"bad schedule", `schedule: "0 3 * * *"`, `schedule: "0 25 * * *"`, "spec.schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := validateTiny(t, tc.old, tc.new)
			require.Error(t, err)
			require.True(t, apierrors.IsInvalid(err), "an Invalid error, as the server answers 422: %v", err)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestValidateCreate_DecodesStrictly(t *testing.T) {
	t.Parallel()
	err := validateTiny(t, "concurrencyPolicy:", "concurrencyPolicyy:")
	require.ErrorContains(t, err, `unknown field "spec.concurrencyPolicyy"`)
	err = validateTiny(t, "  timeZone: Etc/UTC\n", "  timeZone: Etc/UTC\n  timeZone: Etc/UTC\n")
	require.ErrorContains(t, err, `"timeZone" already set`)
}

func TestValidateCreate_TreatsWarningsAsFailures(t *testing.T) {
	t.Parallel()
	// A name that is not a DNS label is accepted with a warning, since pods are named after it.
	err := validateTiny(t, "name: tiny", "name: tiny.retention")
	require.ErrorIs(t, err, ErrWarnings)
	require.ErrorContains(t, err, "metadata.name")
}

func TestRender_RunsTheAPIServerValidation(t *testing.T) {
	t.Parallel()
	_, err := renderTiny(t, "restartPolicy: Never", "restartPolicy: Always")
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "spec.template.spec.restartPolicy")
}
