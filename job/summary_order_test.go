package job

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A summary lists its characters as its tables show them: failed, then held, then the rest, each
// in natural order.
func TestSummaryCharactersOrder(t *testing.T) {
	t.Parallel()
	tl := newTally(false, NopObserver{})
	for _, c := range []CharacterSummary{
		{CharacterID: "big-10"}, {CharacterID: "big-2"}, {CharacterID: "big-1", Held: 1}, {CharacterID: "big-0"},
		{CharacterID: "a-10", Failed: 1}, {CharacterID: "a-9", Failed: 2}, {CharacterID: "big-11", Held: 3},
	} {
		tl.chars[c.CharacterID] = &c
	}
	var s Summary
	tl.fill(&s)
	var ids []string
	for _, c := range s.Characters {
		ids = append(ids, c.CharacterID)
	}
	require.Equal(t, []string{"a-9", "a-10", "big-1", "big-11", "big-0", "big-2", "big-10"}, ids)
}
