package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The environment a test binary re-run in a network namespace of its own finds: the test to
// run inside, the built retention binary, and the network namespace it must not be in (its
// parent's). See inNetns.
const (
	netnsTestEnv   = "RETENTION_NETNS_TEST"
	netnsBinEnv    = "RETENTION_NETNS_BIN"
	netnsParentEnv = "RETENTION_NETNS_PARENT"
)

// inNetns runs the calling test again, in a new network namespace with only loopback up
// (unshare -n), and reports whether this process is that run. The parent fails the test if
// the run inside fails, or if it did not run the test at all; it logs what the run inside
// logged. Inside, the test may cut packets with nft: the namespace, its rules and its sockets
// vanish with it and touch nothing else on the machine. The retention binary is built by the
// parent (the namespace has no network to fetch modules) and found with netnsBinary.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsTestEnv) == t.Name() {
		ns, err := os.Readlink("/proc/self/ns/net")
		require.NoError(t, err)
		require.NotEqual(t, os.Getenv(netnsParentEnv), ns, "this run must be in a network namespace of its own")
		return true
	}
	var missing []string
	for _, tool := range [][2]string{{"unshare", "util-linux"}, {"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool[0], tool[1]))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("this test cuts a connection inside a network namespace of its own and needs %s on PATH; install them",
			strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test makes a network namespace (unshare -n) and sets nft rules in it, which needs root; "+
			"run it as root (CI does), e.g. sudo -E go test -run '^%s$' ./cmd/retention/", t.Name())
	}
	bin := binary(t, &bins.retention, ".", "retention")
	ns, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command("unshare", "-n", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		self, "-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netnsTestEnv+"="+t.Name(), netnsBinEnv+"="+bin, netnsParentEnv+"="+ns)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the run in a network namespace of its own failed: %v\n%s", err, out)
	}
	require.Contains(t, string(out), "--- PASS: "+t.Name()+" ", "the run in the namespace ran the test\n%s", out)
	t.Logf("in a network namespace of its own:\n%s", out)
	return false
}

// netnsBinary is the retention binary the parent of inNetns built.
func netnsBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(netnsBinEnv)
	require.NotEmpty(t, bin, "%s is set by inNetns", netnsBinEnv)
	return bin
}

// nft runs nft with args, failing the test with its output if it fails.
func nft(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("nft", args...).CombinedOutput()
	require.NoError(t, err, "nft %s: %s", strings.Join(args, " "), out)
}

// socketURL is the URL of the throwaway server over its Unix socket, which a rule dropping TCP
// packets leaves alone.
func (s *throwawayServer) socketURL(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(s.url)
	require.NoError(t, err)
	sock := filepath.Join(s.dir, "sock")
	_, err = os.Stat(filepath.Join(sock, ".s.PGSQL."+u.Port()))
	require.NoError(t, err, "the server listens on a Unix socket in %s", sock)
	q := u.Query()
	q.Set("host", sock)
	q.Set("port", u.Port())
	u.Host, u.RawQuery = "", q.Encode()
	return u.String()
}

// port is the server's TCP port.
func (s *throwawayServer) port(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(s.url)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname(), "the server listens on 127.0.0.1")
	return u.Port()
}
