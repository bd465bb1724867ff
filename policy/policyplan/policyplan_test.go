package policyplan_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy/policyfile"
	"github.com/convai-retention/retention/policy/policyplan"
)

func entry(char, maxAge string, enabled bool, note string) policyfile.Entry {
	return policyfile.Entry{CharacterID: char, MaxAge: maxAge, Enabled: enabled, Note: note}
}

func file(def *policyfile.Entry, chars ...policyfile.Entry) *policyfile.File {
	return &policyfile.File{Default: def, Characters: chars}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	def := entry("", "30 days", true, "")
	a := entry("a", "7 days", true, "")
	b := entry("b", "1 day", false, "legal")
	for name, tc := range map[string]struct {
		have, want *policyfile.File
		ops        []string // op and character, in order
	}{
		"equal":               {file(&def, a), file(&def, a), nil},
		"insert":              {file(&def), file(&def, a), []string{"insert a"}},
		"delete after others": {file(&def, a, b), file(nil, entry("a", "8 days", true, "")), []string{"update a", "delete ", "delete b"}},
		"note changes":        {file(nil, b), file(nil, entry("b", "1 day", false, "")), []string{"update b"}},
		"enabled changes":     {file(nil, b), file(nil, entry("b", "1 day", true, "legal")), []string{"update b"}},
		"from nothing":        {file(nil), file(&def, a), []string{"insert ", "insert a"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := policyplan.Diff(tc.have, tc.want)
			require.NotNil(t, got)
			var ops []string
			for _, c := range got {
				ops = append(ops, c.Op+" "+c.CharacterID)
				require.Equal(t, c.Op == "insert", c.Old == nil, "an insert has no old row")
				require.Equal(t, c.Op == "delete", c.New == nil, "a delete has no new row")
			}
			require.Equal(t, tc.ops, ops)
		})
	}
}

func TestDuesAndImpacts(t *testing.T) {
	t.Parallel()
	current := policyplan.Dues(map[string]int64{"a": 1, "b": 2}, map[string]int64{"a": 3})
	require.Equal(t, map[string]policyplan.Due{"a": {Now: 1, Within: 3}, "b": {Now: 2, Within: 2}}, current,
		"a character counted only now is due as much within the horizon")
	planned := policyplan.Dues(map[string]int64{"c": 4}, map[string]int64{"a": 5, "c": 6})
	p := policyplan.Plan{Impact: policyplan.Impacts(current, planned)}
	require.Equal(t, []policyplan.Impact{
		{CharacterID: "a", NowCurrent: 1, WeekCurrent: 3, NowPlanned: 0, WeekPlanned: 5},
		{CharacterID: "b", NowCurrent: 2, WeekCurrent: 2},
		{CharacterID: "c", NowPlanned: 4, WeekPlanned: 6},
	}, p.Impact)
	require.Equal(t, int64(4), p.DueNow())
	require.Equal(t, int64(4), p.NewDeletions(), "what a change stops counts nothing")
	require.Equal(t, []policyplan.Impact{}, policyplan.Impacts(nil, nil), "no characters is an empty list, not null")
}

// memory_max_age alone makes an update; a file without it clears the table's, and the change
// says so; the planned policies that set one are listed, the default first.
func TestDiffMemoryMaxAge(t *testing.T) {
	t.Parallel()
	with := func(e policyfile.Entry, mem string) policyfile.Entry { e.MemoryMaxAge = mem; return e }
	def := entry("", "30 days", true, "")
	a := entry("a", "7 days", true, "")
	have := file(&def, with(a, "90 days"))
	want := file(&def, a)
	changes := policyplan.Diff(have, want)
	require.Len(t, changes, 1)
	require.Equal(t, "update", changes[0].Op)
	from, to, changed := changes[0].MemoryChange()
	require.Equal(t, []any{"90 days", "", true}, []any{from, to, changed})

	set := with(def, "1 year")
	changes = policyplan.Diff(want, file(&set, a))
	require.Len(t, changes, 1)
	from, to, changed = changes[0].MemoryChange()
	require.Equal(t, []any{"", "1 year", true}, []any{from, to, changed})

	require.Empty(t, policyplan.Diff(have, file(&def, with(a, "90 days"))))
	_, _, changed = policyplan.Change{Op: "insert", New: &a}.MemoryChange()
	require.False(t, changed, "an insert without memory_max_age changes no memory retention")

	require.Equal(t, []policyfile.Entry{set, with(a, "90 days")}, policyplan.MemoryPolicies(file(&set, with(a, "90 days"), entry("b", "1 day", true, ""))))
	require.Equal(t, []policyfile.Entry{}, policyplan.MemoryPolicies(file(nil)), "none is an empty list, not null")

	// In JSON an entry without memory_max_age says null.
	js, err := json.Marshal([]policyfile.Entry{a, with(a, "90 days")})
	require.NoError(t, err)
	require.JSONEq(t, `[{"character_id":"a","max_age":"7 days","memory_max_age":null,"enabled":true,"note":""},
		{"character_id":"a","max_age":"7 days","memory_max_age":"90 days","enabled":true,"note":""}]`, string(js))
}
