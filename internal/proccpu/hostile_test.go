package proccpu

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A process directory whose files are not what /proc gives (a FIFO, /dev/zero, a file over the
// bound, a stat line without its fields) is read as no process: nothing blocks, nothing large
// is read.
func TestHostileProcFiles(t *testing.T) {
	root := t.TempDir()
	saved := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = saved })
	dir := func(pid string) string {
		d := filepath.Join(root, pid)
		require.NoError(t, os.Mkdir(d, 0o755))
		return d
	}
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir("11"), "stat"), 0o644))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(dir("12"), "stat")))
	big := "13 (x) S 1 " + strings.Repeat("1 ", maxStat)
	require.NoError(t, os.WriteFile(filepath.Join(dir("13"), "stat"), []byte(big), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir("14"), "stat"), []byte("14 (no fields"), 0o644))
	for _, pid := range []int{11, 12, 13, 14, 15} {
		_, _, _, ok := Times(pid)
		require.False(t, ok, "pid %d", pid)
	}

	// A well-formed line is read; a parent whose comm is a FIFO is not postgres.
	good := "16 (postgres: checkpointer) S 17 " + strings.Repeat("0 ", 9) + "5 7 11 13 0 0"
	require.NoError(t, os.WriteFile(filepath.Join(dir("16"), "stat"), []byte(good), 0o644))
	ppid, self, children, ok := Times(16)
	require.True(t, ok)
	require.Equal(t, 17, ppid)
	require.Equal(t, 12*ClockTick, self)
	require.Equal(t, 24*ClockTick, children)
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir("17"), "comm"), 0o644))
	require.Zero(t, PostgresParent(16))
	require.NoError(t, os.Remove(filepath.Join(root, "17", "comm")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "17", "comm"), []byte("postgres\n"), 0o644))
	require.Equal(t, 17, PostgresParent(16))
}
