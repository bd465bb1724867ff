package source

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
)

// relationSeeds are names an operator might type, well or badly.
var relationSeeds = []string{
	"retention.sessions", "Public.Convai_Sessions_V", "a.b", "_._", "a$.b$1", "APP.V2", "public.select",
	"public." + strings.Repeat("a", 63), "public." + strings.Repeat("a", 64), strings.Repeat("Z", 63) + ".t",
	"$a.b", "1a.b", "a.1b", "a.b.c", "a", "", ".", "a.", ".b", "a..b", `"a".b`, `a."B"`, "a b.c", " a.b",
	"a.b ", "a.b\n", "a\x00.b", "a-b.c", "public.x;drop table y", "pg_catalog.pg_class)", "public.t--",
	"public.t'", "ÄÖ.b", "a.\u212a", "\u0130.b", "a.ß", "café.t", "a.b\u200b", "ａ.b",
}

// plainIdentifier reports whether p is what PostgreSQL reads unquoted and the job accepts: an
// ASCII letter or _, then ASCII letters, digits, _ or $, at most 63 bytes. It is written apart
// from ParseRelation's regular expression, to check it.
func plainIdentifier(p string) bool {
	if len(p) == 0 || len(p) > 63 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '$')) {
			return false
		}
	}
	return true
}

// unquote reads back a name quoted by Relation.quoted: "schema"."name", where a quote inside a
// part is doubled.
func unquote(t *testing.T, q string) (schema, name string) {
	t.Helper()
	var parts []string
	for len(q) > 0 {
		require.Equal(t, byte('"'), q[0], "a quoted part starts with a quote: %s", q)
		var sb strings.Builder
		i := 1
		for ; ; i++ {
			require.Less(t, i, len(q), "unterminated quoted part: %s", q)
			if q[i] == '"' {
				if i+1 < len(q) && q[i+1] == '"' {
					sb.WriteByte('"')
					i++
					continue
				}
				break
			}
			sb.WriteByte(q[i])
		}
		parts = append(parts, sb.String())
		q = q[i+1:]
		if len(q) > 0 {
			require.Equal(t, byte('.'), q[0], "parts are separated by a dot")
			q = q[1:]
		}
	}
	require.Len(t, parts, 2)
	return parts[0], parts[1]
}

// FuzzParseRelation: ParseRelation never panics; it accepts exactly two plain identifiers and
// returns them folded to lower case, nothing else changed; it refuses everything else with an
// *InvalidRelationError carrying the value; the quoted form reads back to the same relation.
func FuzzParseRelation(f *testing.F) {
	for _, s := range relationSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelation(s)
		parts := strings.Split(s, ".")
		plain := len(parts) == 2 && plainIdentifier(parts[0]) && plainIdentifier(parts[1])
		if err != nil {
			var ie *InvalidRelationError
			require.True(t, errors.As(err, &ie), "%q: %T", s, err)
			require.Equal(t, s, ie.Value)
			require.NotEmpty(t, ie.Reason)
			require.False(t, plain, "%q is two plain identifiers but was refused: %v", s, err)
			require.Equal(t, Relation{}, r)
			return
		}
		require.True(t, plain, "%q is not two plain identifiers but was accepted as %v", s, r)
		for _, p := range []string{r.Schema, r.Name} {
			require.Regexp(t, `^[a-z_][a-z0-9_$]*$`, p)
			require.LessOrEqual(t, len(p), 63)
		}
		require.Equal(t, strings.ToLower(s), r.String(), "folded to lower case, nothing else")

		q := r.quoted()
		require.Equal(t, `"`+r.Schema+`"."`+r.Name+`"`, q)
		schema, name := unquote(t, q)
		require.Equal(t, r, Relation{Schema: schema, Name: name})

		again, err := ParseRelation(r.String())
		require.NoError(t, err)
		require.Equal(t, r, again, "parsing is idempotent")
	})
}

// TestRelationFoldsLikePostgres checks the folding and quoting against the server: a relation
// created under the name as typed (unquoted, so PostgreSQL folds it) is the one the parsed name
// finds, and PostgreSQL's own parser reads the quoted form back into the same two parts.
func TestRelationFoldsLikePostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	for _, s := range relationSeeds {
		r, err := ParseRelation(s)
		if err != nil {
			continue
		}
		var parts []string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT parse_ident($1)`, r.quoted()).Scan(&parts), s)
		require.Equal(t, []string{r.Schema, r.Name}, parts, s)
	}
	for _, typed := range []string{"Public_X.Mixed_Case$1", "APP.V2", "a$.b$1", strings.Repeat("Z", 63) + ".t"} {
		t.Run(typed, func(t *testing.T) {
			r, err := ParseRelation(typed)
			require.NoError(t, err)
			schema := strings.Split(typed, ".")[0]
			_, err = db.Pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
			require.NoError(t, err)
			_, err = db.Pool.Exec(ctx, `CREATE VIEW `+typed+` AS
				SELECT character_id, session_id, last_active_at FROM retention.sessions`)
			require.NoError(t, err)
			src, err := Inspect(ctx, db.Pool, r)
			require.NoError(t, err, "the view PostgreSQL created for %s is found as %s", typed, r)
			require.Equal(t, r, src.Relation())
		})
	}
	// A reserved word is a fine relation name once quoted, which the job always does.
	_, err := db.Pool.Exec(ctx, `CREATE VIEW public."select" AS SELECT character_id, session_id, last_active_at FROM retention.sessions`)
	require.NoError(t, err)
	r, err := ParseRelation("public.select")
	require.NoError(t, err)
	_, err = Inspect(ctx, db.Pool, r)
	require.NoError(t, err)
}
