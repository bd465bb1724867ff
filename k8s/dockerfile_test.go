package k8s

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

func readDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return out
}

// finalStage returns the instructions from the last FROM on, with that FROM's image.
func finalStage(t *testing.T, ins []instruction) (string, []instruction) {
	t.Helper()
	for i := len(ins) - 1; i >= 0; i-- {
		if ins[i].cmd == "FROM" {
			fields := strings.Fields(ins[i].args)
			return fields[len(fields)-1], ins[i+1:]
		}
	}
	require.FailNow(t, "no FROM")
	return "", nil
}

func TestDockerfile_BuildsAStaticNonRootImage(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t, filepath.Join("..", "Dockerfile"))
	var froms []string
	for _, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
		}
		require.NotEqual(t, "RUN", in.cmd, "FROM scratch has no shell to RUN anything")
	}
	require.Equal(t, []string{"scratch"}, froms, "one stage on no base image: nothing is pulled")

	base, final := finalStage(t, ins)
	require.Equal(t, "scratch", base)
	got := map[string]string{}
	var copies []string
	for _, in := range final {
		got[in.cmd] = in.args
		if in.cmd == "COPY" {
			copies = append(copies, in.args)
		}
	}
	// What scripts/image.sh puts into the build context.
	require.ElementsMatch(t, []string{
		"passwd group /etc/",
		"ca-certificates.crt /etc/ssl/certs/ca-certificates.crt",
		"retention /retention",
	}, copies)

	uid, gid, ok := strings.Cut(got["USER"], ":")
	require.True(t, ok, "USER uid:gid")
	for _, id := range []string{uid, gid} {
		n, err := strconv.Atoi(id)
		require.NoError(t, err, "USER must be numeric for runAsNonRoot to check it")
		require.Equal(t, nonRootID, n, "the manifests' runAsUser and runAsGroup")
	}

	var entrypoint, cmd []string
	require.NoError(t, json.Unmarshal([]byte(got["ENTRYPOINT"]), &entrypoint), "ENTRYPOINT in exec form")
	require.Equal(t, []string{"/retention"}, entrypoint)
	require.NoError(t, json.Unmarshal([]byte(got["CMD"]), &cmd), "CMD in exec form")
	require.Equal(t, []string{"run"}, cmd)
}

// TestStaticBuild builds the binary as scripts/image.sh does and checks that it runs on an image
// without a C library: no interpreter, no shared libraries.
func TestStaticBuild(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "retention")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/retention")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off")
	msg, err := build.CombinedOutput()
	require.NoError(t, err, "CGO_ENABLED=0 go build ./cmd/retention:\n%s", msg)

	f, err := elf.Open(out)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary asks for a dynamic loader")
		require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary is dynamically linked")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "DT_NEEDED")
}
