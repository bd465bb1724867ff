package main

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

func TestReportPoliciesAsOf(t *testing.T) {
	t.Parallel()
	b, _ := reportAfterRun(t) // seedWorld: default 30 days, c-own 7 days, c-off disabled
	var before time.Time
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&before))
	b.exec(t, `UPDATE retention.policies SET max_age = '14 days', note = 'ticket 7' WHERE character_id = 'c-own'`)

	type doc struct {
		Policies []struct {
			Version     int64   `json:"version"`
			CharacterID *string `json:"character_id"`
			MaxAge      string  `json:"max_age"`
			Reason      *string `json:"reason"`
		} `json:"policies"`
	}
	own := func(r result) (string, *string) {
		t.Helper()
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		var d doc
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
		require.Len(t, d.Policies, 3)
		require.Nil(t, d.Policies[0].CharacterID, "the default first")
		for _, p := range d.Policies {
			if p.CharacterID != nil && *p.CharacterID == "c-own" {
				return p.MaxAge, p.Reason
			}
		}
		t.Fatal("no c-own policy")
		return "", nil
	}
	age, why := own(b.run(t, "report", "--policies-as-of", before.Format(time.RFC3339Nano), "--format", "json"))
	require.Equal(t, "7 days", age)
	require.Nil(t, why)
	age, why = own(b.run(t, "report", "--policies-as-of", time.Now().Add(time.Minute).Format(time.RFC3339), "--format", "json"))
	require.Equal(t, "14 days", age)
	require.Equal(t, "ticket 7", *why)

	r := b.run(t, "report", "--policies-as-of", "2001-01-01", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "none: no policy was in force")

	for _, args := range [][]string{
		{"report", "--policies-as-of", "yesterday"},
		{"report", "--policies-as-of", "2026-01-01", "--session", "s"},
		{"report", "--policies-as-of", "2026-01-01", "--format", "html"},
	} {
		r := b.run(t, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v\n%s", args, r)
	}
}

func TestSessionEvidenceNamesThePolicyVersion(t *testing.T) {
	t.Parallel()
	b, eligible := reportAfterRun(t)
	var version int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT max(id) FROM retention.policy_history WHERE new_character_id IS NULL`).Scan(&version))
	r := b.run(t, "report", "--session", "c-two-old-0", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var ev struct {
		Findings []struct {
			Reason   string `json:"reason"`
			Deletion struct {
				PolicyVersion *int64 `json:"policy_version"`
			} `json:"deletion"`
		} `json:"findings"`
	}
	require.Contains(t, eligible, "c-two/c-two-old-0")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev), r.stdout)
	require.Len(t, ev.Findings, 1)
	require.NotNil(t, ev.Findings[0].Deletion.PolicyVersion)
	require.Equal(t, version, *ev.Findings[0].Deletion.PolicyVersion)
	require.Contains(t, ev.Findings[0].Reason, "version "+itoa(version))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
