package k8s

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const tinyKustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - job.yaml
`

const tinyJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: tiny
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: retention
          image: example/retention:1
`

// renderTiny renders a one-Job kustomization whose job.yaml has old replaced by new.
func renderTiny(t *testing.T, old, new string) (Objects, error) {
	t.Helper()
	job := strings.Replace(tinyJob, old, new, 1)
	if old != new {
		require.NotEqual(t, tinyJob, job, "%q is not in the manifest", old)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(tinyKustomization), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o600))
	return Render(dir)
}

func TestRender_DecodesAValidManifest(t *testing.T) {
	t.Parallel()
	objs, err := renderTiny(t, "", "")
	require.NoError(t, err)
	require.Len(t, objs.Jobs, 1)
	require.Equal(t, "tiny", objs.Jobs[0].Name)
	require.Equal(t, "Never", string(objs.Jobs[0].Spec.Template.Spec.RestartPolicy))
}

func TestRender_RejectsMisspeltFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, old, new, wantErr string
	}{
		{"unknown field", "restartPolicy:", "restartPolicyy:", `unknown field "spec.template.spec.restartPolicyy"`},
		{"field name in the wrong case", "restartPolicy:", "RestartPolicy:", `unknown field "spec.template.spec.RestartPolicy"`},
		{"nested unknown field", "image:", "imagen:", `unknown field "spec.template.spec.containers[0].imagen"`},
		{"duplicate field", "      restartPolicy: Never\n", "      restartPolicy: Never\n      restartPolicy: Always\n", "restartPolicy"},
		{"wrong type", "restartPolicy: Never", "restartPolicy: [Never]", "restartPolicy of type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := renderTiny(t, tc.old, tc.new)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestRender_RejectsKindsItDoesNotCheck(t *testing.T) {
	t.Parallel()
	_, err := renderTiny(t, "kind: Job", "kind: Deployment")
	require.ErrorContains(t, err, "unexpected object batch/v1 Deployment")
}

func TestReadFile_DecodesEveryDocument(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "two.yaml")
	doc := tinyJob + "---\n" + strings.Replace(tinyJob, "name: tiny", "name: other", 1)
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	objs, err := ReadFile(path)
	require.NoError(t, err)
	require.Len(t, objs.Jobs, 2)
	require.Equal(t, "other", objs.Jobs[1].Name)

	require.NoError(t, os.WriteFile(path, []byte(doc+"---\n"+strings.Replace(tinyJob, "spec:\n  template", "spec:\n  templat", 1)), 0o600))
	_, err = ReadFile(path)
	require.ErrorContains(t, err, `unknown field "spec.templat"`)
}
