package k8s

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

const secretExample = "base/secret.example.yaml"

func TestSecretExample_MatchesWhatThePodsRead(t *testing.T) {
	t.Parallel()
	objs, err := ReadFile(secretExample)
	require.NoError(t, err)
	require.Len(t, objs.Secrets, 3)

	keys := map[string][]string{}
	for _, s := range objs.Secrets {
		for k, v := range s.StringData {
			keys[s.Name] = append(keys[s.Name], k)
			require.Contains(t, v, "CHANGE-ME", "%s/%s must hold a placeholder, not a value", s.Name, k)
		}
		require.Empty(t, s.Data, "%s: placeholders go in stringData", s.Name)
	}
	require.Equal(t, map[string][]string{
		dbSecretName:        {dbSecretKey},
		migrateDBSecretName: {dbSecretKey},
		keySecretName:       {keySecretKey},
	}, keys)
}

func TestSecretExample_IsInNoKustomization(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, objs := range []Objects{f.base, f.suspended, f.migrate, f.sharded, f.dryRun} {
		require.Empty(t, objs.Secrets)
	}
	kustomizations, err := filepath.Glob("*/kustomization.yaml")
	require.NoError(t, err)
	require.Len(t, kustomizations, 5)
	for _, path := range kustomizations {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var k struct{ Resources []string }
		require.NoError(t, yaml.Unmarshal(b, &k))
		require.NotEmpty(t, k.Resources, path)
		for _, r := range k.Resources {
			require.False(t, strings.Contains(r, "secret"), "%s lists %s", path, r)
		}
	}
}
