package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// TestInsecureMemoryAPIURLRefused: CONVAI_MEMORY_API_URL is held to CONVAI_API_URL's rule: a
// plain http:// URL to another machine is refused with exit 2 before anything connects, and an
// invalid one is refused too, even though nothing calls the memory endpoints unless asked.
func TestInsecureMemoryAPIURLRefused(t *testing.T) {
	t.Parallel()
	env := offline(t)
	for _, args := range [][]string{{"run"}, {"verify"}, {"discover"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			r := run(t, with(env, "CONVAI_MEMORY_API_URL", "http://memory.convai.example"), args...)
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			require.Contains(t, r.stderr, "CONVAI_MEMORY_API_URL", "%s", r)
			require.Contains(t, r.stderr, "--allow-insecure-url", "%s", r)
			require.NotContains(t, r.stderr, "connect to database", "refused before anything else: %s", r)

			r = run(t, with(env, "CONVAI_MEMORY_API_URL", "ftp://memory.convai.example"), args...)
			require.NotEqual(t, exitcode.OK, r.code, "%s", r)
			require.Contains(t, r.stderr, "MemoryBaseURL", "%s", r)
		})
	}
}
