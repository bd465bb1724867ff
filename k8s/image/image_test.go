package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	nonRootID = 65532
	apiKey    = "image-test-key"
	// keyPath is where the pods mount the API key Secret (k8s/base/cronjob.yaml).
	keyPath = "/var/run/secrets/convai/api-key"
	// cmdTimeout bounds each podman command.
	cmdTimeout = 3 * time.Minute
	// buildTimeout bounds scripts/image.sh, which compiles the binary from a cold cache too: a
	// bound on a hang, not a speed target (two builds at once on a busy 2-core machine took
	// more than cmdTimeout).
	buildTimeout = 8 * time.Minute
)

// installHint is what every failure to find or use podman says.
const installHint = "the image test builds and runs the release image with podman and runc: " +
	"install them (Debian/Ubuntu: apt-get install podman buildah runc), or run `make test` as root, " +
	"which installs them (scripts/ensure-podman.sh); PODMAN=/path/to/podman picks another podman"

// podman runs podman with a storage of its own under a temporary directory, so that the test
// neither sees nor leaves images in the machine's storage, and with runc as the runtime.
type podman struct {
	path   string
	global []string
}

func newPodman(t *testing.T) podman {
	t.Helper()
	path := os.Getenv("PODMAN")
	if path == "" {
		var err error
		path, err = exec.LookPath("podman")
		if err != nil {
			t.Fatalf("podman not found on PATH and PODMAN is not set: %s", installHint)
		}
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc not found on PATH: %s", installHint)
	}
	// Not t.TempDir(): podman refuses a runroot longer than 50 characters, and a test's temporary
	// directory is named after the test.
	parent := os.TempDir()
	if len(parent) > 20 {
		parent = "/tmp"
	}
	store, err := os.MkdirTemp(parent, "podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(store); err != nil {
			t.Errorf("remove the podman store: %v", err)
		}
	})
	p := podman{path: path, global: []string{
		"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
		"--storage-driver", "vfs", "--runtime", runc, "--events-backend", "file",
	}}
	out, err := p.cmd(t.Context(), "version", "--format", "{{.Client.Version}}").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s\n%s", path, err, out, installHint)
	}
	// Every container is --rm and the vfs driver mounts nothing: removing the temporary
	// directory removes the store.
	return p
}

func (p podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, p.path, slices.Concat(p.global, args)...)
}

// runResult is what one container run printed and how it ended.
type runResult struct {
	stdout, stderr string
	code           int
}

// run starts the image with the restrictions of the pods in k8s/: user 65532:65532, a read-only
// root filesystem with no writable tmpfs either, every capability dropped, no new privileges.
// The host network lets it reach the test's PostgreSQL and fake endpoint on 127.0.0.1.
func (p podman) run(t *testing.T, image string, opts []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	base := []string{
		"run", "--rm", "--pull", "never", "--network", "host",
		"--user", fmt.Sprintf("%d:%d", nonRootID, nonRootID),
		"--read-only", "--read-only-tmpfs=false",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
	}
	cmd := p.cmd(ctx, slices.Concat(base, opts, []string{image}, args)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("podman run %v: %v\n%s", args, err, res.stderr)
	}
	return res
}

// fixture is a built image and what runs it.
type fixture struct {
	podman  podman
	image   string
	version string
}

func setup(t *testing.T) fixture {
	t.Helper()
	p := newPodman(t)
	version := "imagetest-" + strings.ToLower(rand.Text()[:8])
	tag := "localhost/convai-retention:" + version

	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "image.sh"), "-t", tag)
	build.Env = append(os.Environ(), "VERSION="+version,
		"CONTAINER_TOOL="+strings.Join(append([]string{p.path}, p.global...), " "))
	var stderr bytes.Buffer
	build.Stderr = &stderr
	out, err := build.Output()
	require.NoError(t, err, "scripts/image.sh -t %s:\n%s\n%s", tag, stderr.String(), installHint)
	require.NotEmpty(t, strings.TrimSpace(string(out)), "image.sh prints the image ID")
	return fixture{podman: p, image: tag, version: version}
}

func TestImage(t *testing.T) {
	t.Parallel()
	f := setup(t)

	t.Run("config", func(t *testing.T) {
		out, err := f.podman.cmd(t.Context(), "image", "inspect", f.image).Output()
		require.NoError(t, err)
		var images []struct {
			Config struct {
				User       string
				Entrypoint []string
				Cmd        []string
				Labels     map[string]string
			}
			Size int64
		}
		require.NoError(t, json.Unmarshal(out, &images))
		require.Len(t, images, 1)
		cfg := images[0].Config
		require.Equal(t, fmt.Sprintf("%d:%d", nonRootID, nonRootID), cfg.User, "the manifests' runAsUser and runAsGroup")
		require.Equal(t, []string{"/retention"}, cfg.Entrypoint, "the manifests pass only args")
		require.Equal(t, []string{"run"}, cfg.Cmd)
		require.Equal(t, f.version, cfg.Labels["org.opencontainers.image.version"])
		require.Less(t, images[0].Size, int64(64<<20), "the binary, CA certificates and two small files")
	})

	t.Run("version", func(t *testing.T) {
		res := f.podman.run(t, f.image, nil, "version")
		require.Zero(t, res.code, res.stderr)
		require.Equal(t, "retention "+f.version+"\n", res.stdout)
	})

	t.Run("help", func(t *testing.T) {
		res := f.podman.run(t, f.image, nil, "help")
		require.Zero(t, res.code, res.stderr)
		require.Contains(t, res.stdout, "retention migrate")
		require.Contains(t, res.stdout, "exit codes:")
	})

	t.Run("no shell", func(t *testing.T) {
		res := f.podman.run(t, f.image, []string{"--entrypoint", "/bin/sh"}, "-c", "true")
		require.NotZero(t, res.code, "the image is FROM scratch: nothing but the binary runs")
	})

	t.Run("bad usage", func(t *testing.T) {
		res := f.podman.run(t, f.image, nil, "run", "--no-such-flag")
		require.Equal(t, exitcode.Usage, res.code, res.stderr)
	})
}

// TestImage_MigratesAndDeletes runs `migrate` and a real run in the image against a fresh
// database and the stand-in endpoint, as the migration Job and the CronJob's pod would.
func TestImage_MigratesAndDeletes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	db := pgtest.NewEmpty(t)
	ctx := t.Context()

	fake := convaitest.New(convaitest.Options{APIKey: apiKey})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close)

	// The key as the pods get it: a file readable by group 65532 only, mounted read-only.
	keyFile := filepath.Join(t.TempDir(), "api-key")
	require.NoError(t, os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o440))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(keyFile, 0, nonRootID))
	} else {
		require.NoError(t, os.Chmod(keyFile, 0o444))
	}
	env := []string{
		"-e", "DATABASE_URL=" + db.URL,
		"-e", "LOG_LEVEL=info",
	}

	res := f.podman.run(t, f.image, env, "migrate")
	require.Zero(t, res.code, "migrate:\n%s", res.stderr)
	res = f.podman.run(t, f.image, env, "migrate")
	require.Zero(t, res.code, "migrate again:\n%s", res.stderr)

	// 150 + 100 expired sessions, one of them held; 5 recent ones.
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days');
		INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		SELECT 'char-a', 'a-' || i, now() - interval '40 days' - i * interval '1 minute' FROM generate_series(1, 150) i
		UNION ALL
		SELECT 'char-b', 'b-' || i, now() - interval '31 days' - i * interval '1 minute' FROM generate_series(1, 100) i
		UNION ALL
		SELECT 'char-a', 'recent-' || i, now() - interval '1 day' FROM generate_series(1, 5) i;
		INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('char-b', 'b-7', 'legal hold');`)
	require.NoError(t, err)

	runEnv := slices.Concat(env, []string{
		"-e", "CONVAI_API_URL=" + srv.URL,
		"-e", "CONVAI_API_KEY_FILE=" + keyPath,
		"-v", keyFile + ":" + keyPath + ":ro",
	})
	res = f.podman.run(t, f.image, runEnv, "run", "--format", "json")
	require.Equal(t, exitcode.OK, res.code, "run:\n%s", res.stderr)

	var status string
	var deleted, failed int64
	require.NoError(t, db.Pool.QueryRow(ctx,
		`SELECT status, deleted, failed FROM retention.runs ORDER BY id DESC LIMIT 1`).Scan(&status, &deleted, &failed))
	require.Equal(t, "succeeded", status)
	require.Equal(t, int64(249), deleted)
	require.Zero(t, failed)

	rows, err := db.Pool.Query(ctx, `SELECT character_id, session_id FROM retention.deletions WHERE status = 'deleted'`)
	require.NoError(t, err)
	recorded := map[string][]string{}
	for rows.Next() {
		var c, s string
		require.NoError(t, rows.Scan(&c, &s))
		recorded[c] = append(recorded[c], s)
	}
	require.NoError(t, rows.Err())
	var other int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM retention.deletions WHERE status <> 'deleted'`).Scan(&other))
	require.Zero(t, other, "every claimed session is confirmed")

	sent := fake.Deleted()
	require.Len(t, recorded["char-a"], 150)
	require.Len(t, recorded["char-b"], 99)
	for c := range recorded {
		slices.Sort(recorded[c])
		got := slices.Clone(sent[c])
		slices.Sort(got)
		require.Equal(t, recorded[c], got, "what the endpoint deleted for %s is what was recorded", c)
		require.NotContains(t, recorded[c], "b-7", "held")
		for _, s := range recorded[c] {
			require.False(t, strings.HasPrefix(s, "recent-"), "not expired: %s", s)
		}
	}
}
