package policyfile_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy/policyfile"
	"github.com/convai-retention/retention/policy/policytest"
)

// readKnown reads the intervals of policytest.MaxAgeCases, as PostgreSQL reads them (the
// database's own test in cmd/retention checks that it does), and nothing else.
func readKnown(texts []string) (map[string]policyfile.Reading, error) {
	out := map[string]policyfile.Reading{}
	for _, text := range texts {
		out[text] = policyfile.Reading{Invalid: `invalid input syntax for type interval: "` + text + `"`}
		for _, c := range policytest.MaxAgeCases {
			if c.Text == text {
				out[text] = policyfile.Reading{Text: "<" + text + ">", Interval: c.Interval}
			}
		}
	}
	return out, nil
}

func TestParseCheckedEveryMistakeInOnePass(t *testing.T) {
	t.Parallel()
	file := `default:
  max_age: 30 days
  colour: red
characters:
  a:
    max_age: 10 minutes
  b:
    max_age: "30"
  c:
    max_age: -1 day
  d:
    max_age: 30 days
    enabled: maybe
  e:
    max_age: thirty days
  f:
    max_age: 201 years
  g:
    max_age: 1 mon -2 days
  h:
    note: no max_age
  ok:
    max_age: 1 hour
`
	f, err := policyfile.ParseChecked(strings.NewReader(file), readKnown)
	require.Nil(t, f)
	var list policyfile.ErrorList
	require.True(t, errors.As(err, &list), "%v", err)
	want := []string{
		`line 3: the default policy: unknown key "colour"`,
		`line 6: character "a": max_age '<10 minutes>' is under one hour ("10 minutes"): a policy keeps sessions for at least one hour`,
		`line 8: character "b": max_age 30 has no unit: PostgreSQL would read it as seconds; write e.g. '30 days'`,
		`line 10: character "c": max_age '<-1 day>' is not positive`,
		`line 13: character "d": enabled must be true or false, not "maybe"`,
		`line 15: character "e": max_age "thirty days" is not an interval PostgreSQL reads`,
		`line 17: character "f": max_age '<201 years>' is over 200 years`,
		`line 19: character "g": max_age '<1 mon -2 days>' has a negative part`,
		`line 21: character "h": max_age is missing`,
	}
	require.Len(t, list, len(want), "%v", err)
	for i, w := range want {
		require.Contains(t, list[i].Error(), w)
	}
	// A value with a unit gets the hint about its size, never the one about a missing unit.
	require.NotContains(t, list[1].Error(), "no unit")
	require.NotContains(t, list[1].Error(), "seconds")

	// The same file without its mistakes reads, with every max_age as written.
	good, err := policyfile.ParseChecked(strings.NewReader("default:\n  max_age: 30 days\ncharacters:\n  ok:\n    max_age: 1 hour\n"), readKnown)
	require.NoError(t, err)
	require.Equal(t, "30 days", good.Default.MaxAge)
	require.Equal(t, "1 hour", good.Characters[0].MaxAge)
}

func TestParseCheckedReaderFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection lost")
	calls := 0
	_, err := policyfile.ParseChecked(strings.NewReader("characters:\n  a:\n    max_age: 1 day\n  b:\n    max_age: 2 days\n"),
		func([]string) (map[string]policyfile.Reading, error) { calls++; return nil, boom })
	require.ErrorIs(t, err, boom)
	var list policyfile.ErrorList
	require.False(t, errors.As(err, &list), "a failure to ask is not a mistake of the file")
	require.Equal(t, 1, calls)

	// A reader that leaves a value out is a failure too, never a value taken as good.
	_, err = policyfile.ParseChecked(strings.NewReader("default:\n  max_age: 1 day\n"),
		func([]string) (map[string]policyfile.Reading, error) { return map[string]policyfile.Reading{}, nil })
	require.ErrorContains(t, err, `no reading of max_age "1 day"`)
	require.False(t, errors.As(err, &list))
}

// The intervals of a file are read in one call, each distinct text once, whatever the number of
// entries; each mistake is still named at the line of each entry that has it.
func TestParseCheckedReadsOnce(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("default:\n  max_age: 30 days\ncharacters:\n")
	for i := range 1000 {
		maxAge := []string{"30 days", "1 hour", "thirty days", "10 minutes"}[i%4]
		fmt.Fprintf(&b, "  c%04d:\n    max_age: %s\n", i, maxAge)
	}
	var calls [][]string
	_, err := policyfile.ParseChecked(strings.NewReader(b.String()), func(texts []string) (map[string]policyfile.Reading, error) {
		calls = append(calls, texts)
		return readKnown(texts)
	})
	require.Equal(t, [][]string{{"30 days", "1 hour", "thirty days", "10 minutes"}}, calls)
	var list policyfile.ErrorList
	require.True(t, errors.As(err, &list), "%.200v", err)
	require.Len(t, list, 500)
	for j, e := range list {
		i := 2 + 4*(j/2) + j%2 // the entries c0002, c0003, c0006, c0007, ...
		require.Equal(t, 5+2*i, e.Line, "%v", e)
		require.Contains(t, e.Reason, fmt.Sprintf("character \"c%04d\": max_age ", i))
	}
}

// memory_max_age has max_age's rule: each mistake is named at its line, with the policy and the
// key, and a file without one reads as a policy that sets none.
func TestParseCheckedMemoryMaxAge(t *testing.T) {
	t.Parallel()
	file := `default:
  max_age: 30 days
  memory_max_age: 10 minutes
characters:
  a:
    max_age: 30 days
    memory_max_age: "30"
  b:
    max_age: 30 days
    memory_max_age: thirty days
  c:
    max_age: 30 days
    memory_max_age: 201 years
  d:
    max_age: 30 days
    memory_max_age:
  e:
    max_age: 30 days
    memory_max_age: 1 hour
  f:
    max_age: 30 days
`
	_, err := policyfile.ParseChecked(strings.NewReader(file), readKnown)
	var list policyfile.ErrorList
	require.True(t, errors.As(err, &list), "%v", err)
	want := []string{
		`line 3: the default policy: memory_max_age '<10 minutes>' is under one hour ("10 minutes"): a policy keeps memory for at least one hour`,
		`line 7: character "a": memory_max_age 30 has no unit: PostgreSQL would read it as seconds; write e.g. '30 days'`,
		`line 10: character "b": memory_max_age "thirty days" is not an interval PostgreSQL reads`,
		`line 13: character "c": memory_max_age '<201 years>' is over 200 years, the longest a policy keeps memory`,
		`line 16: character "d": memory_max_age must be an interval such as '30 days'; leave memory_max_age out to keep memory as long as Convai keeps it`,
	}
	require.Len(t, list, len(want), "%v", err)
	for i, w := range want {
		require.Contains(t, list[i].Error(), w)
	}

	good, err := policyfile.ParseChecked(strings.NewReader("characters:\n  e:\n    max_age: 30 days\n    memory_max_age: 1 hour\n"+
		"  f:\n    max_age: 30 days\n"), readKnown)
	require.NoError(t, err)
	require.Equal(t, "1 hour", good.Characters[0].MemoryMaxAge)
	require.Equal(t, 4, good.Characters[0].MemoryMaxAgeLine)
	require.Empty(t, good.Characters[1].MemoryMaxAge, "absent: the policy sets none")
}
