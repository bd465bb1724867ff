package job

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy"
)

func rec(char string, i int) policy.Record {
	return policy.Record{CharacterID: char, SessionID: fmt.Sprintf("%s-%d", char, i), LastActive: time.Unix(int64(i), 0)}
}

func ids(c Chunk) []string {
	out := make([]string, len(c.Sessions))
	for i, r := range c.Sessions {
		out[i] = r.SessionID
	}
	return out
}

func TestChunkerFillsPerCharacter(t *testing.T) {
	t.Parallel()
	c := newChunker(3, 100)
	var ready []Chunk
	for i := range 4 {
		ready = append(ready, c.add(rec("a", i), policy.Decision{})...)
		ready = append(ready, c.add(rec("b", i), policy.Decision{})...)
	}
	require.Len(t, ready, 2)
	require.Equal(t, []string{"a-0", "a-1", "a-2"}, ids(ready[0]))
	require.Equal(t, []string{"b-0", "b-1", "b-2"}, ids(ready[1]))
	rest := c.flush()
	require.Len(t, rest, 2)
	require.Equal(t, []string{"a-3"}, ids(rest[0]), "the chunk that started first comes first")
	require.Equal(t, []string{"b-3"}, ids(rest[1]))
	require.Empty(t, c.flush())
}

func TestChunkerCapsWhatItHolds(t *testing.T) {
	t.Parallel()
	c := newChunker(100, 5)
	var ready []Chunk
	for i := range 20 {
		ready = append(ready, c.add(rec(fmt.Sprintf("c%d", i%4), i), policy.Decision{})...)
		require.LessOrEqual(t, c.buffered, 5)
	}
	total := 0
	for _, ch := range ready {
		total += len(ch.Sessions)
		for _, r := range ch.Sessions {
			require.Equal(t, ch.CharacterID, r.CharacterID)
		}
	}
	for _, ch := range c.flush() {
		total += len(ch.Sessions)
	}
	require.Equal(t, 20, total, "nothing lost, nothing repeated")
}

func TestChunkerOrderStaysSmall(t *testing.T) {
	t.Parallel()
	c := newChunker(1, 1000)
	for i := range 10_000 {
		require.Len(t, c.add(rec("a", i), policy.Decision{}), 1)
	}
	require.Less(t, len(c.order), 2048, "entries of taken chunks are compacted away")
}

func TestTruncateKeepsUTF8(t *testing.T) {
	t.Parallel()
	s := truncate(string(make([]byte, maxErrorText-1)) + "日本")
	require.LessOrEqual(t, len(s), maxErrorText+len("…"))
	require.Contains(t, s, "…")
	require.Equal(t, "short", truncate("short"))
}
