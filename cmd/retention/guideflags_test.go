package main

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The GUIDE's table of run's flags is written by hand: it names every flag of run's option
// table, and nothing else, each with the table's default.
func TestGuideRunFlagsAreTheOptionTable(t *testing.T) {
	t.Parallel()
	guide, err := os.ReadFile("../../docs/GUIDE.md")
	require.NoError(t, err)
	text := string(guide)
	start := strings.Index(text, "### Flags of `retention run`")
	require.GreaterOrEqual(t, start, 0, "docs/GUIDE.md has a section of run's flags")
	section := text[start+1:]
	if end := regexp.MustCompile(`\n##+ `).FindStringIndex(section); end != nil {
		section = section[:end[0]]
	}
	documented := map[string]string{}
	var order []string
	for _, m := range regexp.MustCompile("(?m)^\\| `--([a-z-]+)` \\|([^|]*)\\|").FindAllStringSubmatch(section, -1) {
		require.NotContains(t, documented, m[1], "--%s is documented twice", m[1])
		documented[m[1]] = strings.Trim(strings.TrimSpace(m[2]), "`")
		order = append(order, m[1])
	}

	var o runOptions
	fs := runFlags(&o)
	var defined []string
	fs.VisitAll(func(f *flag.Flag) {
		if _, alias := fs.aliases[f.Name]; !alias {
			defined = append(defined, f.Name)
		}
	})
	slices.Sort(defined)
	slices.Sort(order)
	require.Equal(t, defined, order, "docs/GUIDE.md's run flags and run's option table")

	for name, doc := range documented {
		def := fs.Lookup(name).DefValue
		if name == "log-level" {
			// The flag is empty unless given: the level is then LOG_LEVEL's, else info, as its
			// help says.
			require.Contains(t, fs.Lookup(name).Usage, "(default "+doc+")", "--log-level: the GUIDE's default")
			continue
		}
		if d, err := time.ParseDuration(def); err == nil && strings.ContainsAny(def, "hms") {
			g, err := time.ParseDuration(doc)
			require.NoError(t, err, "--%s: the GUIDE's default %q is a duration", name, doc)
			require.Equal(t, d, g, "--%s: the GUIDE's default", name)
			continue
		}
		require.Equal(t, def, doc, "--%s: the GUIDE's default", name)
	}
}
