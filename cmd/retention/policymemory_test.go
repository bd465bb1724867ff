package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// memoryPolicies returns the table as "character=memory_max_age" rows, "none" for NULL.
func (b *bundle) memoryPolicies(t *testing.T) []string {
	t.Helper()
	return b.strings(t, `SELECT coalesce(character_id, '(default)') || '=' || coalesce(memory_max_age::text, 'none')
		FROM retention.policies ORDER BY character_id NULLS FIRST`)
}

// exportBody exports the policies and returns the file without its header (which has the time).
func (b *bundle) exportBody(t *testing.T) (path, body string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "p.yaml")
	r := b.run(t, "policy", "export", "--out", path)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return path, strings.Join(lines, "\n")
}

// memory_max_age goes through the policy file both ways: apply sets it (the plan says so),
// export writes it, the export applied changes nothing and exports the same; a file without it
// clears it, and the plan says that clearly; each change is a version of the history.
func TestPolicyFileMemoryMaxAge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	_, body := b.exportBody(t)
	require.NotContains(t, body, "memory_max_age", "no policy sets one: the export writes none")

	file := writeFile(t, `default:
  max_age: 30 days
  memory_max_age: 90d
characters:
  c-own:
    max_age: 7 days
  c-off:
    max_age: 1 day
    enabled: false
    memory_max_age: 1 hour
`)
	r := b.run(t, "policy", "apply", "-f", file, "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "plan: 2 change(s)")
	require.Contains(t, r.stdout, "~ default policy: max_age 30 days -> max_age 30 days, memory_max_age 90d\n      memory_max_age: none -> 90d\n")
	require.Contains(t, r.stdout, "      memory_max_age: none -> 1 hour\n")
	require.Contains(t, r.stdout, "  default policy: memory_max_age 90d\n")
	require.Contains(t, r.stdout, `  character "c-off": memory_max_age 1 hour (disabled: not applied)`)
	require.Equal(t, []string{"(default)=none", "c-off=none", "c-own=none"}, b.memoryPolicies(t), "a dry-run changes nothing")

	history := b.count(t, `SELECT count(*) FROM retention.policy_history`)
	r = b.run(t, "policy", "apply", "-f", file, "--actor", "alice", "--reason", "ticket 18")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "applied\n")
	require.Equal(t, []string{"(default)=90 days", "c-off=01:00:00", "c-own=none"}, b.memoryPolicies(t))
	// A change of memory_max_age alone is a version, with the old and the new value.
	require.Equal(t, history+2, b.count(t, `SELECT count(*) FROM retention.policy_history`))
	require.Equal(t, []string{"(default) none -> 90 days alice ticket 18", "c-off none -> 01:00:00 alice ticket 18"}, b.strings(t, `
		SELECT coalesce(new_character_id, '(default)') || ' ' || coalesce(old_memory_max_age::text, 'none') || ' -> '
		       || coalesce(new_memory_max_age::text, 'none') || ' ' || actor || ' ' || reason
		FROM retention.policy_history WHERE op = 'update' ORDER BY id`))

	// The export writes it where it is set, and applying the export changes nothing.
	exported, body := b.exportBody(t)
	require.Equal(t, 2, strings.Count(body, "memory_max_age"), body)
	require.Contains(t, body, "default:\n  max_age: 30 days\n  memory_max_age: 90 days\n")
	r = b.run(t, "policy", "apply", "-f", exported)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "plan: 0 change(s)")
	_, again := b.exportBody(t)
	require.Equal(t, body, again)

	// The file is the whole truth: one without memory_max_age clears it, and the plan says so.
	clear := writeFile(t, strings.Replace(body, "  memory_max_age: 90 days\n", "", 1))
	r = b.run(t, "policy", "apply", "-f", clear, "--format", "json", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var plan struct {
		Changes []struct {
			Op  string `json:"op"`
			Old struct {
				MemoryMaxAge *string `json:"memory_max_age"`
			} `json:"old"`
			New struct {
				MemoryMaxAge *string `json:"memory_max_age"`
			} `json:"new"`
		} `json:"changes"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan), r.stdout)
	require.Len(t, plan.Changes, 1)
	require.Equal(t, "90 days", *plan.Changes[0].Old.MemoryMaxAge)
	require.Nil(t, plan.Changes[0].New.MemoryMaxAge, "null: the policy sets none")
	r = b.run(t, "policy", "apply", "-f", clear)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "memory_max_age: 90 days -> none (not in the file: cleared, long-term memory kept as long as Convai keeps it)")
	require.Equal(t, []string{"(default)=none", "c-off=01:00:00", "c-own=none"}, b.memoryPolicies(t))
	require.Equal(t, []string{"90 days -> none"}, b.strings(t, `
		SELECT old_memory_max_age::text || ' -> ' || coalesce(new_memory_max_age::text, 'none') FROM retention.policy_history
		WHERE op = 'update' AND new_character_id IS NULL AND old_memory_max_age IS NOT NULL`))
}

// A memory_max_age the rule refuses is named with its line, its policy and the key, with every
// other mistake of the file, and nothing changes.
func TestPolicyFileRefusesABadMemoryMaxAge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	before, history := b.memoryPolicies(t), b.count(t, `SELECT count(*) FROM retention.policy_history`)
	file := writeFile(t, `default:
  max_age: 30 days
  memory_max_age: 10 minutes
characters:
  c-own:
    max_age: 7 days
    memory_max_age: ninety days
  c-new:
    max_age: 1 year
    memory_max_age: 1 mon -40 days
`)
	r := b.run(t, "policy", "apply", "-f", file)
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "invalid policy file; nothing changed")
	require.Contains(t, r.stderr, file+`:3: the default policy: memory_max_age '00:10:00' is under one hour ("10 minutes"): a policy keeps memory for at least one hour`)
	require.Contains(t, r.stderr, file+`:7: character "c-own": memory_max_age "ninety days" is not an interval PostgreSQL reads`)
	require.Contains(t, r.stderr, file+`:10: character "c-new": memory_max_age '1 mon -40 days' is not positive: a policy keeps memory for at least one hour`)
	require.Equal(t, before, b.memoryPolicies(t))
	require.Equal(t, history, b.count(t, `SELECT count(*) FROM retention.policy_history`))
}

// report --policies-as-of shows each version's memory_max_age, in every format.
func TestReportPoliciesAsOfMemoryMaxAge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	var before time.Time
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&before))
	b.exec(t, `UPDATE retention.policies SET memory_max_age = '90 days' WHERE character_id = 'c-own'`)
	after := time.Now().Add(time.Minute).Format(time.RFC3339)

	memory := func(at string) map[string]*string {
		t.Helper()
		r := b.run(t, "report", "--policies-as-of", at, "--format", "json")
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		var d struct {
			Policies []struct {
				CharacterID  *string `json:"character_id"`
				MemoryMaxAge *string `json:"memory_max_age"`
			} `json:"policies"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
		out := map[string]*string{}
		for _, p := range d.Policies {
			out[orStrTest(p.CharacterID)] = p.MemoryMaxAge
		}
		return out
	}
	was := memory(before.Format(time.RFC3339Nano))
	require.Len(t, was, 3)
	require.Nil(t, was["c-own"])
	now := memory(after)
	require.NotNil(t, now["c-own"])
	require.Equal(t, "90 days", *now["c-own"])
	require.Nil(t, now["(default)"])

	r := b.run(t, "report", "--policies-as-of", after, "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "MEMORY MAX AGE")
	require.Regexp(t, `c-own\s+7 days\s+90 days\s+true`, r.stdout)
	r = b.run(t, "report", "--policies-as-of", after, "--format", "csv")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "policy_id,version,character_id,max_age,enabled,note,changed_at,changed_by,actor,reason,memory_max_age\n",
		"memory_max_age last: the columns before it keep their places")
	require.Regexp(t, `(?m),c-own,7 days,true,.*,90 days$`, r.stdout)
}

func orStrTest(p *string) string {
	if p == nil {
		return "(default)"
	}
	return *p
}

// retention plan names each policy that sets memory_max_age, and per character whose policy in
// force sets it, the threshold, its end users and those a hold keeps; one line when none does.
func TestPlanShowsMemoryRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	r := b.run(t, "plan")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "memory retention: no policy sets memory_max_age; long-term memory is kept as long as Convai keeps it\n")

	b.exec(t, `UPDATE retention.policies SET memory_max_age = '90 days' WHERE character_id IS NULL`)
	b.exec(t, `UPDATE retention.policies SET memory_max_age = '30 days' WHERE character_id IN ('c-own', 'c-off')`)
	b.exec(t, `INSERT INTO retention.end_users (end_user_id, character_id) VALUES
		('u1', 'c-own'), ('u2', 'c-own'), ('u3', 'c-def'), ('u4', 'c-held'), ('u5', 'c-off')`)
	r = b.run(t, "plan")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "  default policy: memory_max_age 90 days\n")
	require.Contains(t, r.stdout, `  character "c-off": memory_max_age 30 days (disabled: not applied)`)
	require.Contains(t, r.stdout, `  character "c-own": memory_max_age 30 days`+"\n")
	require.Regexp(t, `CHARACTER\s+MEMORY MAX AGE\s+THRESHOLD\s+END USERS\s+HELD`, r.stdout)
	require.Regexp(t, `\nc-def\s+90 days\s+\S+\s+1\s+0\n`, r.stdout)
	require.Regexp(t, `\nc-held\s+90 days\s+\S+\s+1\s+1\n`, r.stdout)
	require.Regexp(t, `\nc-own\s+30 days\s+\S+\s+2\s+0\n`, r.stdout)
	require.NotRegexp(t, `\nc-off\s`, r.stdout[strings.Index(r.stdout, "MEMORY MAX AGE"):], "its policy is disabled")

	r = b.run(t, "plan", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var p struct {
		MemoryPolicies []struct {
			CharacterID  string `json:"character_id"`
			MemoryMaxAge string `json:"memory_max_age"`
		} `json:"memory_policies"`
		Memory []struct {
			CharacterID string    `json:"character_id"`
			Threshold   time.Time `json:"threshold"`
			EndUsers    int64     `json:"end_users"`
			Held        int64     `json:"held"`
		} `json:"memory_retention"`
		At time.Time `json:"at"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	require.Len(t, p.MemoryPolicies, 3)
	require.Len(t, p.Memory, 3)
	require.Equal(t, "c-own", p.Memory[2].CharacterID)
	require.Equal(t, p.At.AddDate(0, 0, -30), p.Memory[2].Threshold.In(p.At.Location()), "the threshold is the plan's instant minus memory_max_age")

	// The dry-run says the same, per character, in text and in JSON (as docs/schema documents it).
	r = run(t, with(b.env, "CONVAI_API_KEY", ""), "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "memory retention: 3 character(s) with memory_max_age, 4 end user(s) to list (1 held); a dry-run lists none\n"+
		"  c-def: memory_max_age 90 days applies to 1 end user(s) (0 held)\n"+
		"  c-held: memory_max_age 90 days applies to 1 end user(s) (1 held)\n"+
		"  c-own: memory_max_age 30 days applies to 2 end user(s) (0 held)\n")
	r = run(t, with(b.env, "CONVAI_API_KEY", ""), "run", "--dry-run", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	sum := requireValid(t, compileSchema(t, "summary.schema.json"), "dry-run", r.stdout)
	per := sum["memory_retention"].(map[string]any)["per_character"].([]any)
	require.Len(t, per, 3)
	require.Equal(t, map[string]any{"character_id": "c-own", "memory_max_age": "30 days", "end_users": 2.0, "held": 0.0}, per[2])
}
