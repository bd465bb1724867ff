package source

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/migrations"
	"github.com/convai-retention/retention/policy"
)

// Source is a session source the job has checked: a relation with the columns character_id,
// session_id and last_active_at, and the selection SQL fit for it.
type Source struct {
	rel Relation
	// strict is true for a table whose three columns are NOT NULL text and whose
	// (character_id, session_id) is unique: no duplicate or NULL handling is needed, and the
	// selection can walk an index on (last_active_at, character_id, session_id).
	strict bool

	firstSQL, pageSQL, undatedSQL, unmatchedSQL string
	sizeSQL, sizeByCharacterSQL                 string
	erasureAllSQL, erasureOneSQL                string
}

// Relation returns the source's name.
func (s *Source) Relation() Relation { return s.rel }

// Strict reports whether the source is a table keyed by (character_id, session_id) with NOT NULL
// text columns.
func (s *Source) Strict() bool { return s.strict }

// Inspect checks that rel exists and has the columns the job reads with usable types. A missing
// relation or column is a *SourceError.
func Inspect(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, rel Relation) (*Source, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relkind::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       t.typcategory::text,
		       EXISTS (
		         SELECT 1 FROM pg_index i
		         WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		           AND i.indnkeyatts = 2 AND i.indnatts = 2
		           AND (SELECT array_agg(x.attname::text ORDER BY x.attname)
		                FROM pg_attribute x WHERE x.attrelid = c.oid AND x.attnum = ANY (i.indkey::int2[]))
		               = ARRAY['character_id', 'session_id'])
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		      AND a.attname IN ('character_id', 'session_id', 'last_active_at')
		LEFT JOIN pg_type t ON t.oid = a.atttypid
		WHERE n.nspname = $1 AND c.relname = $2`, rel.Schema, rel.Name)
	if err != nil {
		return nil, fmt.Errorf("inspect source %s: %w", rel, err)
	}
	type col struct {
		typ, category string
		notNull       bool
	}
	cols := map[string]col{}
	var kind string
	var unique, found bool
	for rows.Next() {
		var name, typ, cat *string
		var notNull *bool
		if err := rows.Scan(&kind, &name, &typ, &notNull, &cat, &unique); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inspect source %s: %w", rel, err)
		}
		found = true
		if name != nil {
			cols[*name] = col{typ: *typ, category: *cat, notNull: *notNull}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inspect source %s: %w", rel, err)
	}
	if !found {
		return nil, &SourceError{Relation: rel.String(), Problem: "no such table or view (names are folded to lower case; is the schema right?)"}
	}
	if !strings.Contains("rvmpf", kind) {
		return nil, &SourceError{Relation: rel.String(), Problem: fmt.Sprintf("is not a table or view (relkind %q)", kind)}
	}
	var problems []string
	for _, name := range []string{"character_id", "session_id"} {
		c, ok := cols[name]
		switch {
		case !ok:
			problems = append(problems, "missing column "+name)
		case c.category != "S" && c.typ != "uuid":
			problems = append(problems, fmt.Sprintf("column %s is %s; want text (or uuid): cast it in a view", name, c.typ))
		}
	}
	if c, ok := cols["last_active_at"]; !ok {
		problems = append(problems, "missing column last_active_at")
	} else if c.typ != "timestamp with time zone" {
		hint := "cast it in a view"
		if c.typ == "timestamp without time zone" {
			hint = "say which time zone it is in, e.g. last_active_at AT TIME ZONE 'UTC' in a view"
		}
		problems = append(problems, fmt.Sprintf("column last_active_at is %s; want timestamp with time zone: %s", c.typ, hint))
	}
	if len(problems) > 0 {
		return nil, &SourceError{Relation: rel.String(), Problem: strings.Join(problems, "; ")}
	}
	isText := func(c col) bool { return c.typ == "text" || strings.HasPrefix(c.typ, "character varying") }
	src := &Source{rel: rel}
	src.strict = (kind == "r" || kind == "p") && unique &&
		cols["character_id"].notNull && cols["session_id"].notNull && cols["last_active_at"].notNull &&
		isText(cols["character_id"]) && isText(cols["session_id"])
	src.build()
	return src, nil
}

// deletedProbe is true when the page row's session is deleted: recorded deleted and not found
// present by a verification since. It is retention.is_deleted written out: PostgreSQL does not
// inline a SQL function with sub-selects, and a function call per page row tripled the page's
// cost (make bench). TestDeletedRuleIsOne holds this copy, the claim's and is_deleted together.
// Scalar LIMIT 1 subqueries stay an index probe per row whatever the statistics say. The probes
// of refuting verifications and of v1 deletions are made only when the page's one-row join g
// (deletedOnce) says such rows exist at all: most installs have neither, and a probe of an empty
// table per row still costs a relation-size system call (make bench, perf).
var deletedProbe = fmt.Sprintf(`(coalesce((SELECT true FROM retention.outcomes d
		         WHERE d.character_id = p.character_id AND d.session_id = p.session_id AND d.status = 'deleted'
		           AND NOT (g.refuted AND EXISTS (SELECT 1 FROM retention.verifications v
		                           WHERE v.deletion_id = d.claim_id * %[1]d + d.ord AND v.result = 'present'))
		         LIMIT 1), false)
		  OR (g.v1 AND coalesce((SELECT true FROM retention.deletions_v1 d
		         WHERE d.character_id = p.character_id AND d.session_id = p.session_id AND d.status = 'deleted'
		           AND NOT (g.refuted AND EXISTS (SELECT 1 FROM retention.verifications v
		                           WHERE v.deletion_id = d.id AND v.result = 'present'))
		         LIMIT 1), false)))`, migrations.DeletionIDStride)

// deletedOnce is the one-row relation g that deletedProbe reads: whether any verification found
// a deleted session present, and whether any v1 deletion exists.
const deletedOnce = `(SELECT EXISTS (SELECT 1 FROM retention.verifications WHERE result = 'present') AS refuted,
		       EXISTS (SELECT 1 FROM retention.deletions_v1 WHERE status = 'deleted') AS v1) g`

// The bounds of a usable last activity (policy.ValidLastActive) as SQL literals: a row outside
// them (PostgreSQL's infinities, a year BC, a year past 9999) cannot be read into a Go time or
// printed as JSON. The job counts it as malformed, like a row without a date, and a session with
// such a row is superseded as by an undated one. Migration 011 writes the same bounds into
// retention.expired_sessions_in; policytest's cases hold the two together.
var (
	lastActiveAfter  = "'" + time.Time{}.Format(time.RFC3339Nano) + "'::timestamptz"
	lastActiveBefore = "'" + policy.LastActiveBefore.Format(time.RFC3339Nano) + "'::timestamptz"
)

// build writes the selection SQL. A page is the next limit rows of the source in key order,
// however many of them turn out to be done: the scan of one statement stays bounded even where
// the source holds long stretches of sessions already deleted. Each row says whether its session
// is already deleted (deletedProbe: index probes of the deleted outcomes and v1 rows) and,
// for a non-strict source, whether a later row of the same session (or one without a usable
// date) supersedes it: the job never sends either. A page leaves out the rows without a usable
// date; Undated counts them. A non-strict source also gets its IDs cast to text and NULLs
// ordered as empty strings (the job skips them as malformed).
func (s *Source) build() {
	rel := s.rel.quoted()
	var inner, outer string
	if s.strict {
		inner = fmt.Sprintf(`
			SELECT s.character_id, s.session_id, s.last_active_at
			FROM %s s
			WHERE s.last_active_at <= $1 AND s.last_active_at > %s %%s
			ORDER BY s.last_active_at, s.character_id, s.session_id
			LIMIT %%s`, rel, lastActiveAfter)
		outer = `
		SELECT p.character_id, p.session_id, p.last_active_at,
		       ` + deletedProbe + `,
		       false
		FROM (%s) p CROSS JOIN ` + deletedOnce + `
		ORDER BY p.last_active_at, p.character_id, p.session_id`
		s.firstSQL = fmt.Sprintf(outer, fmt.Sprintf(inner, "", "$2"))
		s.pageSQL = fmt.Sprintf(outer, fmt.Sprintf(inner, "AND (s.last_active_at, s.character_id, s.session_id) > ($2, $3, $4)", "$5"))
	} else {
		inner = fmt.Sprintf(`
			SELECT s.character_id AS raw_character_id, s.session_id AS raw_session_id,
			       s.character_id::text AS character_id, s.session_id::text AS session_id, s.last_active_at
			FROM %s s
			WHERE s.last_active_at <= $1 AND s.last_active_at > %s %%s
			ORDER BY s.last_active_at, coalesce(s.character_id::text, ''), coalesce(s.session_id::text, '')
			LIMIT %%s`, rel, lastActiveAfter)
		outer = fmt.Sprintf(`
		SELECT p.character_id, p.session_id, p.last_active_at,
		       `+deletedProbe+`,
		       EXISTS (SELECT 1 FROM %s n
		               WHERE n.character_id = p.raw_character_id AND n.session_id = p.raw_session_id
		                 AND (n.last_active_at > p.last_active_at OR n.last_active_at IS NULL
		                      OR n.last_active_at <= %s))
		FROM (%%s) p CROSS JOIN `+deletedOnce+`
		ORDER BY p.last_active_at, coalesce(p.character_id, ''), coalesce(p.session_id, '')`, rel, lastActiveAfter)
		after := "s.last_active_at >= $2 AND (s.last_active_at > $2 OR (coalesce(s.character_id::text, ''), coalesce(s.session_id::text, '')) > ($3, $4))"
		s.firstSQL = fmt.Sprintf(outer, fmt.Sprintf(inner, "", "$2"))
		s.pageSQL = fmt.Sprintf(outer, fmt.Sprintf(inner, "AND "+after, "$5"))
	}
	// A row after the year 9999 is later than any other of its session, so it supersedes them
	// already; a row without a usable date is counted by undatedSQL, two index ranges of a
	// strict source.
	s.undatedSQL = fmt.Sprintf("SELECT count(*) FROM %s s WHERE s.last_active_at IS NULL OR s.last_active_at <= %s OR s.last_active_at >= %s",
		rel, lastActiveAfter, lastActiveBefore)
	s.unmatchedSQL = fmt.Sprintf(`
		SELECT h.character_id, coalesce(h.session_id, '') FROM retention.holds h
		WHERE h.released_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM %s s WHERE s.character_id::text = h.character_id
		                    AND (h.session_id IS NULL OR s.session_id::text = h.session_id))
		ORDER BY h.id`, rel)
	// An erasure request's sessions: every session of the character not yet deleted, with its
	// latest usable activity (NULL when no row has one), or one session's latest activity.
	usable := fmt.Sprintf("FILTER (WHERE s.last_active_at > %s AND s.last_active_at < %s)", lastActiveAfter, lastActiveBefore)
	s.erasureAllSQL = fmt.Sprintf(`
		SELECT g.session_id, g.last_active_at FROM (
			SELECT s.session_id::text AS session_id, max(s.last_active_at) %s AS last_active_at
			FROM %s s WHERE s.character_id::text = $1 AND s.session_id IS NOT NULL
			GROUP BY 1) g
		WHERE NOT retention.is_deleted($1, g.session_id)
		ORDER BY g.session_id`, usable, rel)
	s.erasureOneSQL = fmt.Sprintf(`
		SELECT max(s.last_active_at) %s FROM %s s WHERE s.character_id::text = $1 AND s.session_id::text = $2`, usable, rel)
	s.sizeSQL = fmt.Sprintf("SELECT count(*) FROM %s s", rel)
	s.sizeByCharacterSQL = fmt.Sprintf("SELECT s.character_id::text, count(*) FROM %s s GROUP BY 1", rel)
}
