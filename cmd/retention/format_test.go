package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// Every command's output format is --format, with one vocabulary: text or json for a summary;
// --output, its former name, still works, and a flag given by either name beats the environment.
func TestFormatIsOneFlagOnEveryCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	isJSON := func(r result) bool { return json.Valid([]byte(r.stdout)) }
	env := with(b.env, "CONVAI_API_KEY", "")

	for _, args := range [][]string{
		{"run", "--dry-run", "--format", "json"},
		{"run", "--dry-run", "--output", "json"},
		{"plan", "--format", "json"},
		{"plan", "--output", "json"},
		{"erase", "--character", "c-def", "--reason", "ticket 8", "--format", "json"},
		{"policy", "apply", "-f", writeFile(t, "default:\n  max_age: 30 days\n"), "--dry-run", "--format", "json"},
		{"report", "--format", "json"},
	} {
		r := run(t, env, args...)
		require.Equal(t, exitcode.OK, r.code, "%v: %s", args, r)
		require.True(t, isJSON(r), "%v: %s", args, r.stdout)
	}

	// The command line wins over the environment, by either name.
	r := run(t, with(env, "RETENTION_OUTPUT", "json"), "run", "--dry-run", "--format", "text")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "dry-run: nothing was sent")
	r = run(t, with(env, "RETENTION_FORMAT", "json"), "run", "--dry-run", "--output", "text")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "dry-run: nothing was sent")
	r = run(t, with(env, "RETENTION_FORMAT", "json"), "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.True(t, isJSON(r), r.stdout)

	// One vocabulary: text is the report's table too, and a wrong word names the flag.
	r = run(t, env, "report", "--format", "text")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "Retention compliance report")
	// Every command refuses it when parsing its flags, by either name, before it connects.
	offline := with(env, "DATABASE_URL", "postgres://127.0.0.1:1/none")
	for _, args := range [][]string{
		{"run", "--format", "csv"},
		{"run", "--dry-run", "--output", "yaml"},
		{"schedule", "--cron", "@daily", "--format", "csv"},
		{"plan", "--format", "csv"},
		{"plan", "--output", "yaml"},
		{"sync", "--source", "app.sessions", "--format", "csv"},
		{"verify", "--format", "csv"},
		{"discover", "--output", "yaml"},
		{"erase", "--character", "c", "--reason", "r", "--output", "yaml"},
		{"policy", "apply", "-f", writeFile(t, "default:\n  max_age: 30 days\n"), "--format", "csv"},
		{"audit", "verify", "--format", "csv"},
	} {
		r = run(t, offline, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
		require.Contains(t, r.stderr, `invalid --format "`, "%v", args)
		require.Contains(t, r.stderr, "want text or json", "%v", args)
	}
	// A value from the environment is refused too, naming the variable, on every command that
	// reads one.
	for _, args := range [][]string{{"run"}, {"run", "--dry-run"}, {"schedule", "--cron", "@daily"}, {"sync", "--source", "app.sessions"}} {
		for _, v := range []string{"RETENTION_FORMAT", "RETENTION_OUTPUT"} {
			r = run(t, with(offline, v, "yaml"), args...)
			require.Equal(t, exitcode.Usage, r.code, "%s %v: %s", v, args, r)
			require.Contains(t, r.stderr, `invalid `+v+`="yaml" (for --format): want text or json`, "%v", args)
		}
	}
}
