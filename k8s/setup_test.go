package k8s

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Names the manifests share with each other and with the binary.
const (
	containerName = "retention"
	configMapName = "convai-retention-config"
	dbSecretName  = "convai-retention-db"
	// migrateDBSecretName holds the database URL of the schema's owner, which only k8s/migrate
	// reads: the runs' Secret holds the job role's (sql/roles.sql).
	migrateDBSecretName = "convai-retention-migrate-db"
	dbSecretKey         = "url"
	keySecretName       = "convai-retention-api-key"
	keySecretKey        = "api-key"
	nonRootID           = 65532
	defaultGrace        = "20s" // the binary's default --shutdown-grace
	graceHeadroomS      = 10    // seconds a pod needs after the grace to record the run and exit
	// writeRetryS is how long a record write that failed for a transient reason is retried after
	// the grace (source.Config.WriteRetry, default 1m): the run records what it sent before exiting.
	writeRetryS = 60
)

// fixture holds every manifest set, rendered and strictly decoded.
type fixture struct {
	base, migrate, sharded, dryRun Objects
	// suspended is k8s/suspended, the base with its CronJob suspended, for the first apply.
	suspended Objects
	// config is the data of the base ConfigMap that every pod loads with envFrom.
	config map[string]string
}

func setup(t *testing.T) fixture {
	t.Helper()
	var f fixture
	var err error
	f.base, err = Render("base")
	require.NoError(t, err)
	f.migrate, err = Render("migrate")
	require.NoError(t, err)
	f.sharded, err = Render("sharded")
	require.NoError(t, err)
	f.suspended, err = Render("suspended")
	require.NoError(t, err)
	f.dryRun, err = ReadFile(filepath.Join("oneoff", "dry-run-job.yaml"))
	require.NoError(t, err)

	require.Len(t, f.base.ConfigMaps, 1)
	require.Equal(t, configMapName, f.base.ConfigMaps[0].Name)
	f.config = f.base.ConfigMaps[0].Data
	return f
}

// podTemplate is one pod template of the manifests, with the Job spec that runs it.
type podTemplate struct {
	name string
	job  batchv1.JobSpec
	// deletes tells whether the pod may delete sessions, and so gets the API key. Migrations and
	// dry runs do not call the API and get no key.
	deletes bool
	// dbSecret is the Secret its DATABASE_URL comes from: the owner's for migrations, the job
	// role's for everything else.
	dbSecret string
}

// templates lists every pod template the manifests ship.
func (f fixture) templates(t *testing.T) []podTemplate {
	t.Helper()
	require.Len(t, f.base.CronJobs, 1)
	require.Len(t, f.migrate.Jobs, 1)
	require.Len(t, f.sharded.Jobs, 1)
	require.Len(t, f.dryRun.Jobs, 1)
	return []podTemplate{
		{"base CronJob", f.base.CronJobs[0].Spec.JobTemplate.Spec, true, dbSecretName},
		{"migrate Job", f.migrate.Jobs[0].Spec, false, migrateDBSecretName},
		{"sharded Job", f.sharded.Jobs[0].Spec, true, dbSecretName},
		{"dry-run Job", f.dryRun.Jobs[0].Spec, false, dbSecretName},
	}
}

// container returns the retention container of a pod spec, which must be its only container.
func container(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	require.Len(t, spec.Containers, 1)
	require.Empty(t, spec.InitContainers)
	require.Equal(t, containerName, spec.Containers[0].Name)
	return spec.Containers[0]
}

// env returns the value the container sees for a plain variable: its own env entry first, then
// the ConfigMap it loads with envFrom, as the kubelet resolves them.
func (f fixture) env(t *testing.T, c corev1.Container, name string) (string, bool) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			require.Nil(t, e.ValueFrom, "%s is read from a ConfigMap or Secret", name)
			return e.Value, true
		}
	}
	for _, from := range c.EnvFrom {
		require.NotNil(t, from.ConfigMapRef, "envFrom loads only ConfigMaps")
		require.Equal(t, configMapName, from.ConfigMapRef.Name)
		require.Empty(t, from.Prefix)
		if v, ok := f.config[name]; ok {
			return v, true
		}
	}
	return "", false
}
