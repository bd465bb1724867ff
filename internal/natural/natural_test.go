package natural_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/natural"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"big-2", "big-10", -1},
		{"big-10", "big-2", 1},
		{"big-0", "big-1", -1},
		{"a", "a", 0},
		{"a", "b", -1},
		{"a", "a1", -1},
		{"a9", "a10", -1},
		{"a10b", "a10c", -1},
		{"a01", "a1", -1}, // equal values: told apart all the same
		{"a1", "a01", 1},
		{"x99999999999999999999999", "x100000000000000000000000", -1}, // beyond any integer type
		{"10", "9a", 1},
		{"", "0", -1},
		{"é2", "é10", -1},
	} {
		require.Equal(t, c.want, natural.Compare(c.a, c.b), "%q vs %q", c.a, c.b)
	}
	ids := []string{"big-10", "big-2", "big-1", "big-0", "alpha", "big-11", "beta-3"}
	slices.SortFunc(ids, natural.Compare)
	require.Equal(t, []string{"alpha", "beta-3", "big-0", "big-1", "big-2", "big-10", "big-11"}, ids)
}
