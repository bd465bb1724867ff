package migrations_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

var update = flag.Bool("update", false, "rewrite schema.sql from the migrations instead of comparing it with them")

// schemaFile is the current schema in one file, for reading (schemagen_test.go writes it).
const schemaFile = "schema.sql"

// TestCurrentSchema fails when schema.sql is not what the embedded migrations produce; with
// -update it rewrites the file instead.
func TestCurrentSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	got, err := renderSchema(context.Background(), db.Pool)
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(schemaFile, got, 0o644))
		t.Logf("wrote migrations/%s (%d bytes)", schemaFile, len(got))
		return
	}
	want, err := os.ReadFile(schemaFile)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("migrations/%s is missing: generate it with `%s` and commit it", schemaFile, regenerateCommand)
	}
	require.NoError(t, err)
	if !bytes.Equal(want, got) {
		t.Fatalf("migrations/%s is not the schema migrations 001 to %03d produce: regenerate it with `%s` and commit it.\n%s",
			schemaFile, migrations.Latest(), regenerateCommand, firstDifference(want, got))
	}
}

// firstDifference shows the first line where the checked-in file and the generated one differ,
// with a little context, and the PostgreSQL versions when they are not the same (the server's
// deparsed SQL can change between major versions).
func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d (checked in: %d lines, generated: %d lines):\n", i+1, len(w), len(g))
	for j := max(0, i-2); j < i+3; j++ {
		if j < len(w) {
			fmt.Fprintf(&b, "  checked in %5d: %s\n", j+1, w[j])
		}
	}
	for j := max(0, i-2); j < i+3; j++ {
		if j < len(g) {
			fmt.Fprintf(&b, "  generated  %5d: %s\n", j+1, g[j])
		}
	}
	if pw, pg := printedBy(want), printedBy(got); pw != pg {
		fmt.Fprintf(&b, "the file was printed by %s and this server is %s: regenerate on the version the tests use\n", pw, pg)
	}
	return b.String()
}

// printedBy finds "PostgreSQL N" in the header.
func printedBy(schema []byte) string {
	header, _, _ := bytes.Cut(schema, []byte("\n--\n"))
	if i := bytes.Index(header, []byte("PostgreSQL ")); i >= 0 {
		return strings.Fields(string(header[i:]))[0] + " " + strings.Fields(string(header[i:]))[1]
	}
	return "an unknown version"
}
