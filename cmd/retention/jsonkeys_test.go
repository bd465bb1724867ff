package main

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// snakeKeys returns the object keys of a JSON document that are not snake_case.
func snakeKeys(t *testing.T, doc string) []string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(doc), &v), doc)
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	var bad []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !snake.MatchString(k) {
					bad = append(bad, k)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return bad
}

// Every JSON a command prints names its fields in snake_case, Go's field names nowhere.
func TestJSONKeysAreSnakeCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gate.release()
	b.seedWorld(t)
	env := with(b.env, "CONVAI_API_KEY", "")
	file := writeFile(t, "default:\n  max_age: 30 days\ncharacters:\n  c-own:\n    max_age: 2 days\n  c-new:\n    max_age: 1 year\n")
	for _, args := range [][]string{
		{"run", "--dry-run", "--format", "json"},
		{"plan", "--format", "json"},
		{"policy", "apply", "-f", file, "--dry-run", "--format", "json"},
		{"erase", "--character", "c-two", "--reason", "ticket 9", "--format", "json"},
	} {
		r := run(t, env, args...)
		require.Equal(t, exitcode.OK, r.code, "%v: %s", args, r)
		require.Empty(t, snakeKeys(t, r.stdout), "%v: %s", args, r.stdout)
	}
	r := b.run(t, "run", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, snakeKeys(t, r.stdout), r.stdout)
	for _, args := range [][]string{
		{"report", "--format", "json"},
		{"report", "--format", "json", "--session", "c-own-old-0"},
		{"report", "--format", "json", "--policies-as-of", "2100-01-01"},
	} {
		r := b.run(t, args...)
		require.Equal(t, exitcode.OK, r.code, "%v: %s", args, r)
		require.Empty(t, snakeKeys(t, r.stdout), "%v: %s", args, r.stdout)
	}
}
