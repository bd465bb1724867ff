package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docs/GUIDE.md names the commands whose --format also reads RETENTION_FORMAT and those that
// read the flag only; each command's help, whose flag entries list the variables the flag set
// really reads, says the same.
func TestGuideNamesTheCommandsThatReadRetentionFormat(t *testing.T) {
	t.Parallel()
	guide, err := os.ReadFile("../../docs/GUIDE.md")
	require.NoError(t, err)
	m := regexp.MustCompile("; ([^;]*) also read `RETENTION_FORMAT` [^;]*, while ([^;]*) read the flag only").FindStringSubmatch(string(guide))
	require.NotNil(t, m, "docs/GUIDE.md says which commands read RETENTION_FORMAT")
	names := func(list string) [][]string {
		var out [][]string
		for _, n := range regexp.MustCompile("`([a-z ]+)`").FindAllStringSubmatch(list, -1) {
			out = append(out, strings.Fields(n[1]))
		}
		return out
	}
	reads, flagOnly := names(m[1]), names(m[2])
	require.NotEmpty(t, reads)
	require.NotEmpty(t, flagOnly)
	formatEntry := regexp.MustCompile(`(?m)^  --format\b.*$`)
	check := func(cmd []string, want bool) {
		r := run(t, nil, append(cmd, "--help")...)
		entry := formatEntry.FindString(r.stdout + r.stderr)
		require.NotEmpty(t, entry, "%v has --format\n%s", cmd, r)
		require.Equal(t, want, strings.Contains(entry, "$RETENTION_FORMAT"), "%v: %s", cmd, entry)
	}
	for _, cmd := range reads {
		check(cmd, true)
	}
	for _, cmd := range flagOnly {
		check(cmd, false)
	}
}
