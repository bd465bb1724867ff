package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// compileSchema compiles one of the documented JSON Schemas of docs/schema, asserting formats
// (date-time, date) too.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join("..", "..", "docs", "schema", name))
	require.NoError(t, err, name)
	return s
}

// requireValid checks that out, a command's JSON output, is what schema documents: every field
// declared (no other), every required one there, each of its type.
func requireValid(t *testing.T, s *jsonschema.Schema, what, out string) map[string]any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	require.NoError(t, err, "%s: %s", what, out)
	require.NoError(t, s.Validate(inst), "%s: %s", what, out)
	require.NotContains(t, out, "0001-01-01", "%s: an unknown time is absent or null, never year 1", what)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	return m
}

// The summary of every kind of run, and the report, are what docs/schema says they are.
func TestJSONOutputMatchesTheDocumentedSchemas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gate.release()
	b.seedWorld(t)
	summary := compileSchema(t, "summary.schema.json")
	report := compileSchema(t, "report.schema.json")

	r := b.run(t, "erase", "--character", "c-def", "--reason", "ticket 7", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	// A dry-run says so.
	r = run(t, with(b.env, "CONVAI_API_KEY", ""), "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	s := requireValid(t, summary, "dry-run", r.stdout)
	require.Equal(t, "dry_run", s["status"])
	require.NotContains(t, s, "run_id")

	// Aborted by the safety cap: the cap's count says what would have been sent.
	r = run(t, with(b.env, "RETENTION_ABORT_ABOVE", "1"), "run", "--output", "json")
	require.Equal(t, exitcode.Aborted, r.code, "%s", r)
	s = requireValid(t, summary, "aborted run", r.stdout)
	require.Equal(t, "aborted", s["status"])
	require.Equal(t, false, s["budget_reached"])

	// Refused with 401 while a budget was set: the run stopped; the budget did not end it.
	b.fake.SetAPIKey("another-key-entirely")
	r = b.run(t, "run", "--output", "json", "--max-deletions", "2", "--chunk-size", "1")
	require.Equal(t, exitcode.KeyRejected, r.code, "%s", r)
	s = requireValid(t, summary, "run refused with 401", r.stdout)
	require.Equal(t, "failed", s["status"])
	require.Equal(t, false, s["budget_reached"], "a refused run did not stop at its budget")
	var recorded bool
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT budget_reached FROM retention.runs WHERE id = $1`, int64(s["run_id"].(float64))).Scan(&recorded))
	require.False(t, recorded, "retention.runs says what the summary says")
	b.fake.SetAPIKey(testKey)

	// A run that reaches its budget says so; then one that finishes the rest.
	r = b.run(t, "run", "--output", "json", "--max-deletions", "2")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	s = requireValid(t, summary, "run with a budget", r.stdout)
	require.Equal(t, "succeeded", s["status"])
	require.Equal(t, true, s["budget_reached"])
	r = b.run(t, "run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	s = requireValid(t, summary, "run", r.stdout)
	require.Contains(t, s, "checkpoint")
	require.Contains(t, s, "cutoff")

	r = b.run(t, "report", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	rep := requireValid(t, report, "report", r.stdout)
	require.NotEmpty(t, rep["characters"])
	require.NotEmpty(t, rep["runs"])
	require.NotEmpty(t, rep["erasure_requests"])
}
