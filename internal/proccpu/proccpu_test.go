package proccpu_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/proccpu"
)

// TestTimesReadsThisProcess: this process is readable, its parent is the one the OS names, and
// the tree of this process counts at least its own time.
func TestTimesReadsThisProcess(t *testing.T) {
	t.Parallel()
	ppid, self, _, ok := proccpu.Times(os.Getpid())
	require.True(t, ok)
	require.Equal(t, os.Getppid(), ppid)
	tree, ok := proccpu.Tree(os.Getpid())
	require.True(t, ok)
	require.GreaterOrEqual(t, tree, self)
	require.Zero(t, proccpu.PostgresParent(os.Getpid()), "the test's parent is not postgres")
}

func TestTimesOfNoProcess(t *testing.T) {
	t.Parallel()
	_, _, _, ok := proccpu.Times(-1)
	require.False(t, ok)
	_, ok = proccpu.Tree(-1)
	require.False(t, ok)
}
