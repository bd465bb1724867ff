package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// writeFile writes a policy file in a test directory and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policies.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// policies returns the table as "character=max_age[ off]" rows, the default as "(default)".
func (b *bundle) policies(t *testing.T) []string {
	t.Helper()
	return b.strings(t, `SELECT coalesce(character_id, '(default)') || '=' || max_age::text || CASE WHEN enabled THEN '' ELSE ' off' END
		FROM retention.policies`)
}

func TestPolicyExportApplyRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	before := b.policies(t)
	exported := filepath.Join(t.TempDir(), "p.yaml")
	r := b.run(t, "policy", "export", "--out", exported)
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	// Applying what was exported changes nothing.
	r = b.run(t, "policy", "apply", "-f", exported)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "plan: 0 change(s)")
	require.Contains(t, r.stdout, "nothing to change")
	require.Equal(t, before, b.policies(t))
	historyBefore := b.count(t, `SELECT count(*) FROM retention.policy_history`)

	// c-own 7 -> 3 days (its 8-day-old sessions stay due, its 3-day-old one becomes due), c-off
	// goes (so it follows the default: its 400-day-old sessions become due), c-new is added.
	file := writeFile(t, `default:
  max_age: 30 days
characters:
  c-own:
    max_age: 2 days
    note: shorter
  c-new:
    max_age: 1 year
`)
	r = b.run(t, "policy", "apply", "-f", file, "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var plan struct {
		Changes []struct {
			Op          string `json:"op"`
			CharacterID string `json:"character_id"`
		} `json:"changes"`
		Impact []struct {
			CharacterID string `json:"character_id"`
			Now         int64  `json:"due_now_current"`
			NowPlanned  int64  `json:"due_now_planned"`
		} `json:"impact"`
		NewDeletions int64 `json:"new_deletions"`
		Applied      bool  `json:"applied"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan), r.stdout)
	require.False(t, plan.Applied)
	ops := map[string]string{}
	for _, c := range plan.Changes {
		ops[c.CharacterID] = c.Op
	}
	require.Equal(t, map[string]string{"c-own": "update", "c-new": "insert", "c-off": "delete"}, ops)
	impact := map[string][2]int64{}
	for _, i := range plan.Impact {
		impact[i.CharacterID] = [2]int64{i.Now, i.NowPlanned}
	}
	require.Equal(t, [2]int64{2, 3}, impact["c-own"])
	require.Equal(t, [2]int64{0, 2}, impact["c-off"])
	require.Equal(t, [2]int64{3, 3}, impact["c-def"], "one of its four old sessions is held")
	require.EqualValues(t, 3, plan.NewDeletions)
	require.Equal(t, before, b.policies(t), "a dry-run changes nothing")
	require.Equal(t, historyBefore, b.count(t, `SELECT count(*) FROM retention.policy_history`))

	// Above the cap: refused with the plan and exit 6, nothing changes. (--max-due-share 100
	// leaves --abort-above the only cap.)
	r = b.run(t, "policy", "apply", "-f", file, "--abort-above", "2", "--max-due-share", "100")
	require.Equal(t, exitcode.Aborted, r.code, "%s", r)
	require.Contains(t, r.stdout, "new deletions due now: 3 (ABOVE the safety cap of 2)")
	require.Contains(t, r.stderr, "give --confirm 3 to apply anyway")
	require.Equal(t, before, b.policies(t))

	// --confirm with the plan's count applies it, with the actor and the reason in the history.
	r = run(t, with(b.env, "RETENTION_ACTOR", "alice"), "policy", "apply", "-f", file, "--abort-above", "2", "--confirm", "3", "--reason", "ticket 9")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "applied")
	require.Equal(t, []string{"(default)=30 days", "c-new=1 year", "c-own=2 days"}, b.policies(t))
	require.Equal(t, []string{"delete alice ticket 9", "insert alice ticket 9", "update alice ticket 9"}, b.strings(t,
		`SELECT op || ' ' || actor || ' ' || reason FROM retention.policy_history WHERE id > (SELECT max(id) - 3 FROM retention.policy_history)`))
}

func TestPolicyApplyBadFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	before := b.policies(t)
	history := b.count(t, `SELECT count(*) FROM retention.policy_history`)
	for _, c := range []struct{ file, want string }{
		{"default:\n  max_age: 30 days\n  colour: red\n", `:3: the default policy: unknown key "colour"`},
		{"characters:\n  a:\n    max_age: 1 day\n  a:\n    max_age: 2 days\n", `:4: character "a" appears twice (first on line 2)`},
		{"default:\n  max_age: 1 day\ndefault:\n  max_age: 2 days\n", ":3: a second default policy"},
		{"characters:\n  a:\n    max_age: thirty days\n", `:3: character "a": max_age "thirty days" is not an interval PostgreSQL reads`},
		{"characters:\n  a:\n    max_age: 30 minutes\n", `:3: character "a": max_age '00:30:00' is under one hour`},
		{"characters:\n  a:\n    max_age: 1 day\n  b:\n    max_age: -1 day\n", `:5: character "b": max_age '-1 days' is not positive`},
	} {
		r := b.run(t, "policy", "apply", "-f", writeFile(t, c.file))
		require.Equal(t, exitcode.Usage, r.code, "%s\n%s", c.file, r)
		require.Contains(t, r.stderr, c.want, c.file)
		require.Contains(t, r.stderr, "nothing changed")
	}
	r := b.run(t, "policy", "apply")
	require.Equal(t, exitcode.Usage, r.code)
	r = b.run(t, "policy", "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	require.Equal(t, exitcode.Usage, r.code)
	require.Equal(t, before, b.policies(t))
	require.Equal(t, history, b.count(t, `SELECT count(*) FROM retention.policy_history`))
}

func TestPlanCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t) // 8 due now among 16 sessions
	r := b.run(t, "plan")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `\(total\)\s+8\s+`, r.stdout)
	require.NotContains(t, r.stdout, "would abort")

	r = run(t, with(b.env, "RETENTION_ABORT_ABOVE_PERCENT", "25"), "plan") // 4 of 16
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "the next run would send 8 sessions, above the safety cap of 4: it would abort (exit 6)")
	r = run(t, with(b.env, "RETENTION_ABORT_ABOVE_PERCENT", "25"), "plan", "--max-deletions", "4")
	require.NotContains(t, r.stdout, "would abort")

	// What plan says is what the run does.
	r = b.run(t, "run", "--abort-above-percent", "25")
	require.Equal(t, exitcode.Aborted, r.code, "%s", r)
	require.Contains(t, r.stderr, "would send 8 sessions")
}
