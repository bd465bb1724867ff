package main

import (
	"encoding/csv"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// rowsOf returns the first word of each line of out that starts with one of the characters or
// "(total)", in order.
func rowsOf(out string) []string {
	return regexp.MustCompile(`(?m)^(big-\d+|\(total\))\s`).FindAllString(out, -1)
}

// Tables list characters in natural order (big-2 before big-10), the exceptions (failed,
// overdue, held) first, and close with a totals row, in the run's summary, the plan and the
// report alike.
func TestTablesSortNaturallyExceptionsFirstWithTotals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.gate.release()
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	for _, c := range []string{"big-10", "big-2", "big-1", "big-0"} {
		b.seed(t, c, "old", 1, 40)
	}
	held := b.seed(t, "big-10", "kept", 1, 40)[0]
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('big-10', $1, 'ticket')`,
		strings.TrimPrefix(held, "big-10/"))
	trim := func(rows []string) []string {
		for i := range rows {
			rows[i] = strings.TrimSpace(rows[i])
		}
		return rows
	}

	r := run(t, with(b.env, "CONVAI_API_KEY", ""), "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, []string{"big-10", "big-0", "big-1", "big-2", "(total)"}, trim(rowsOf(r.stdout)), r.stdout)
	require.Regexp(t, `(?m)^\(total\)\s+4\s+1\s+\S+$`, r.stdout, "would delete 4, held 1")

	r = b.run(t, "plan")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, []string{"big-0", "big-1", "big-2", "big-10", "(total)"}, trim(rowsOf(r.stdout)), r.stdout)

	r = b.run(t, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, []string{"big-10", "big-0", "big-1", "big-2", "(total)"}, trim(rowsOf(r.stdout)), r.stdout)
	require.Regexp(t, `(?m)^\(total\)\s+4\s+4\s+0\s+1\s+\S+$`, r.stdout, "selected 4, deleted 4, failed 0, held 1")

	r = b.run(t, "report", "--format", "table")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	table := r.stdout[strings.Index(r.stdout, "CHARACTER"):]
	table = table[:strings.Index(table, "\n\n")]
	require.Equal(t, []string{"big-10", "big-0", "big-1", "big-2", "(total)"}, trim(rowsOf(table)), r.stdout)

	r = b.run(t, "report", "--format", "csv")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	require.NoError(t, err)
	var ids []string
	for _, rec := range recs[1:] {
		ids = append(ids, rec[1])
	}
	require.Equal(t, []string{"big-10", "big-0", "big-1", "big-2", ""}, ids, "the CSV renders the same model")
}
