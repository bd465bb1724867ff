package policyfile_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/policy/policyfile"
)

func TestParse(t *testing.T) {
	t.Parallel()
	f, err := policyfile.Parse(strings.NewReader(`# policies
default:
  max_age: 30 days
  note: privacy policy section 4
characters:
  zed:
    max_age: 1 year
  char-legal:
    max_age: 1 day
    enabled: false
    note: never delete
`))
	require.NoError(t, err)
	require.Equal(t, &policyfile.Entry{MaxAge: "30 days", Enabled: true, Note: "privacy policy section 4", Line: 2, MaxAgeLine: 3}, f.Default)
	require.Equal(t, []policyfile.Entry{
		{CharacterID: "char-legal", MaxAge: "1 day", Enabled: false, Note: "never delete", Line: 8, MaxAgeLine: 9},
		{CharacterID: "zed", MaxAge: "1 year", Enabled: true, Line: 6, MaxAgeLine: 7},
	}, f.Characters)

	empty, err := policyfile.Parse(strings.NewReader("# nothing\n"))
	require.NoError(t, err)
	require.Empty(t, empty.Entries())

	// One document, with its start and end markers, is one document.
	marked, err := policyfile.Parse(strings.NewReader("---\ndefault:\n  max_age: 30 days\n...\n"))
	require.NoError(t, err)
	require.Len(t, marked.Entries(), 1)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, file string
		want       []string // "line N: reason" fragments, in order
	}{
		{"unknown top key", "defaults:\n  max_age: 1 day\n", []string{`line 1: unknown key "defaults"`}},
		{"unknown entry key", "characters:\n  a:\n    max_age: 1 day\n    maxage: 2 days\n", []string{`line 4: character "a": unknown key "maxage"`}},
		{"memory_max_age twice", "characters:\n  a:\n    max_age: 1 day\n    memory_max_age: 2 days\n    memory_max_age: 3 days\n",
			[]string{`line 5: character "a": memory_max_age appears twice`}},
		{"memory_max_age bare number", "default:\n  max_age: 1 day\n  memory_max_age: 90\n",
			[]string{"line 3: the default policy: memory_max_age 90 has no unit"}},
		{"two defaults", "default:\n  max_age: 1 day\ncharacters: {}\ndefault:\n  max_age: 2 days\n", []string{"line 4: a second default policy (the first is on line 1)"}},
		{"duplicate character", "characters:\n  a:\n    max_age: 1 day\n  a:\n    max_age: 2 days\n", []string{`line 4: character "a" appears twice (first on line 2)`}},
		{"bare number", "default:\n  max_age: 30\n", []string{"line 2: the default policy: max_age 30 has no unit: PostgreSQL would read it as seconds"}},
		{"missing max_age", "characters:\n  a:\n    note: x\n", []string{`line 3: character "a": max_age is missing`}},
		{"bad enabled", "characters:\n  a:\n    max_age: 1 day\n    enabled: maybe\n", []string{`line 4: character "a": enabled must be true or false`}},
		{"blank character", "characters:\n  \" \":\n    max_age: 1 day\n", []string{"line 2: a character ID must not be blank"}},
		{"not yaml", "default: [\n", []string{"not valid YAML"}},
		{"a second document", "default:\n  max_age: 30 days\n---\ncharacters:\n  a:\n    max_age: 1 day\n",
			[]string{"line 3: a second YAML document: a policy file is one document; nothing after the first would be applied"}},
		{"a second empty-looking document", "---\ndefault:\n  max_age: 30 days\n---\n# later\ndefault:\n  max_age: 1 day\n",
			[]string{"line 4: a second YAML document"}},
		{"a second bad document", "default:\n  max_age: 30 days\n---\n[\n", []string{"not valid YAML"}},
		{"several", "x: 1\ncharacters:\n  a:\n    max_age: 5\n", []string{`line 1: unknown key "x"`, "line 4: character \"a\": max_age 5 has no unit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, err := policyfile.Parse(strings.NewReader(c.file))
			require.Nil(t, f)
			var list policyfile.ErrorList
			require.True(t, errors.As(err, &list), "%v", err)
			require.Len(t, list, len(c.want), "%v", err)
			for i, w := range c.want {
				require.Contains(t, list[i].Error(), w)
			}
		})
	}
}

func TestWriteReadsBack(t *testing.T) {
	t.Parallel()
	in := &policyfile.File{
		Default: &policyfile.Entry{MaxAge: "30 days", Enabled: true, Note: "it's: quoted # maybe"},
		Characters: []policyfile.Entry{
			{CharacterID: "true", MaxAge: "7 days", Enabled: false},
			{CharacterID: "x y", MaxAge: "1 year 2 mons", MemoryMaxAge: "90 days", Enabled: true, Note: "line one\nline two"},
		},
	}
	var b bytes.Buffer
	require.NoError(t, policyfile.Write(&b, in, "exported\nat noon"))
	require.True(t, strings.HasPrefix(b.String(), "# exported\n# at noon\ndefault:\n"), b.String())
	require.Equal(t, 1, strings.Count(b.String(), "memory_max_age"), "written only where set: %s", b.String())
	out, err := policyfile.Parse(&b)
	require.NoError(t, err)
	for _, e := range append([]*policyfile.Entry{out.Default}, &out.Characters[0], &out.Characters[1]) {
		e.Line, e.MaxAgeLine, e.MemoryMaxAgeLine = 0, 0, 0
	}
	require.Equal(t, in, out)
}
