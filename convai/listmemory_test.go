package convai_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
)

// TestListMemoryFlag: is_added_to_memory is read per element as true or false, matched like the
// other members; any other value is unstated, never "not added", and the list goes on.
func TestListMemoryFlag(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, reply(200, `[
		{"sessionID": "yes", "is_added_to_memory": true},
		{"sessionID": "no", "is_added_to_memory": false},
		{"sessionID": "missing"},
		{"sessionID": "string", "is_added_to_memory": "true"},
		{"sessionID": "null", "is_added_to_memory": null},
		{"sessionID": "number", "is_added_to_memory": 1},
		{"sessionID": "object", "is_added_to_memory": {"value": true}},
		{"IS_ADDED_TO_MEMORY": true, "sessionID": "upper"},
		{"sessionID": "escaped", "\u0069\u0073\u005f\u0061\u0064\u0064\u0065\u0064\u005f\u0074\u006f\u005f\u006d\u0065\u006d\u006f\u0072\u0079": true},
		{"sessionID": "twice", "is_added_to_memory": true, "is_added_to_memory": false}
	]`))
	got := map[string]convai.MemoryFlag{}
	res := c.List(context.Background(), "c", func(s convai.ListedSession) error {
		got[s.SessionID] = s.Memory
		return nil
	})
	requireClean(t, res)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, map[string]convai.MemoryFlag{
		"yes": convai.MemoryAdded, "no": convai.MemoryNotAdded, "missing": convai.MemoryUnstated,
		"string": convai.MemoryUnstated, "null": convai.MemoryUnstated, "number": convai.MemoryUnstated,
		"object": convai.MemoryUnstated, "upper": convai.MemoryAdded, "escaped": convai.MemoryAdded,
		"twice": convai.MemoryNotAdded,
	}, got)

	for _, bad := range []string{`[{"sessionID": "s", "is_added_to_memory": tru}]`, `[{"sessionID": "s", "is_added_to_memory": falsey}]`} {
		c, _ := setup(t, reply(200, bad))
		res := c.List(context.Background(), "c", func(convai.ListedSession) error { return nil })
		require.ErrorIs(t, res.Err, convai.ErrMalformedAnswer, bad)
	}
}

// TestListMemoryFlagAgainstFake: the stand-in's list says which sessions went into memory.
func TestListMemoryFlagAgainstFake(t *testing.T) {
	t.Parallel()
	fake := convaitest.New(convaitest.Options{APIKey: apiKey})
	t.Cleanup(fake.Close)
	client, _ := setup(t, fake.ServeHTTP)
	fake.AddSession("c", "s1", time.Now())
	fake.AddSession("c", "s2", time.Now())
	fake.AddMemory("c", "u", convaitest.Memory{ID: "m", SessionID: "s2"})
	got := map[string]convai.MemoryFlag{}
	res := client.List(context.Background(), "c", func(s convai.ListedSession) error {
		got[s.SessionID] = s.Memory
		return nil
	})
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, map[string]convai.MemoryFlag{"s1": convai.MemoryNotAdded, "s2": convai.MemoryAdded}, got)
}
