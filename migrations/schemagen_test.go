package migrations_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/migrations"
)

// This file writes schema.sql: the retention schema as the embedded migrations leave it, read
// from the catalogs of a database they migrated, laid out for a reader. Everything it prints is
// deparsed by the server (pg_get_functiondef, pg_get_viewdef, pg_get_constraintdef,
// pg_get_indexdef, pg_get_triggerdef) or copied from the migration files, and every list is
// sorted, so two runs on the same PostgreSQL major version give the same bytes. Owners and role
// names of the machine that ran it are left out.

// regenerateCommand rewrites schema.sql; the file's header and the test's failure name it.
const regenerateCommand = "go test ./migrations -run TestCurrentSchema -update"

// catalog is what renderSchema reads from the database.
type catalog struct {
	pgMajor   int
	relations map[string]*relation // tables and views by name
	functions map[string][]*function
}

type relation struct {
	name, kind, comment string // kind: table or view
	columns             []column
	constraints         []string // "CONSTRAINT name definition"
	indexes, triggers   []string // CREATE statements
	grants              []string
	viewDef             string
}

type column struct {
	name, def, comment string // def: the type and its clauses
}

type function struct {
	name, signature string // signature: name(argument types), as regprocedure prints it
	def, comment    string
	params          int // IN, OUT and INOUT parameters: the length of the CREATE's argument list
	grants          []string
}

// querier is what renderSchema reads the catalogs through: a *pgx.Conn or a pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// renderSchema writes schema.sql from the database on conn, migrated by the embedded migrations.
func renderSchema(ctx context.Context, conn querier) ([]byte, error) {
	if err := refuseUnrendered(ctx, conn); err != nil {
		return nil, err
	}
	c, err := loadCatalog(ctx, conn)
	if err != nil {
		return nil, err
	}
	h, err := loadHistory(migrations.FS())
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writeHeader(&b, c, h); err != nil {
		return nil, err
	}
	tables, err := place(c, tableSections, "table", func(r *relation) bool { return r.kind == "table" })
	if err != nil {
		return nil, err
	}
	views, err := place(c, viewSections, "view", func(r *relation) bool { return r.kind == "view" })
	if err != nil {
		return nil, err
	}
	part(&b, "1", "Tables")
	for i, s := range tables {
		banner(&b, fmt.Sprintf("1.%d %s", i+1, s.title), s.about)
		for _, name := range s.names {
			writeTable(&b, c.relations[name], h)
		}
	}
	part(&b, "2", "Views")
	for i, s := range views {
		banner(&b, fmt.Sprintf("2.%d %s", i+1, s.title), s.about)
		for _, name := range s.names {
			writeView(&b, c.relations[name], h)
		}
	}
	funcs, err := placeFunctions(c)
	if err != nil {
		return nil, err
	}
	part(&b, "3", "Functions")
	for i, s := range funcs {
		banner(&b, fmt.Sprintf("3.%d %s", i+1, s.title), s.about)
		for _, name := range s.names {
			for _, f := range c.functions[name] {
				writeFunction(&b, f, h)
			}
		}
	}
	return b.Bytes(), nil
}

// refuseUnrendered fails on objects of a kind renderSchema does not print, so that schema.sql
// never leaves out part of the schema silently.
func refuseUnrendered(ctx context.Context, conn querier) error {
	rows, err := conn.Query(ctx, `
		SELECT 'relation ' || c.relname || ' of kind ' || c.relkind::text FROM pg_class c
		WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind NOT IN ('r', 'v', 'i', 'S')
		UNION ALL
		SELECT 'sequence ' || c.relname || ' (not an identity column''s)' FROM pg_class c
		WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind = 'S'
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')
		UNION ALL
		SELECT 'table ' || c.relname || ' with row security, storage options or unlogged' FROM pg_class c
		WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind IN ('r', 'v')
		  AND (c.relrowsecurity OR c.reloptions IS NOT NULL OR c.relpersistence <> 'p')
		UNION ALL
		SELECT 'table ' || c.relname || ' that inherits' FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE c.relnamespace = 'retention'::regnamespace
		UNION ALL
		SELECT 'row security policy ' || p.polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
		WHERE c.relnamespace = 'retention'::regnamespace
		UNION ALL
		SELECT 'rule ' || r.rulename FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
		WHERE c.relnamespace = 'retention'::regnamespace AND r.rulename <> '_RETURN'
		UNION ALL
		SELECT 'statistics object ' || s.stxname FROM pg_statistic_ext s WHERE s.stxnamespace = 'retention'::regnamespace
		UNION ALL
		SELECT 'type ' || t.typname || ' of kind ' || t.typtype::text FROM pg_type t
		WHERE t.typnamespace = 'retention'::regnamespace AND t.typcategory <> 'A'
		  AND NOT (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind IN ('r', 'v')))
		UNION ALL
		SELECT 'routine ' || p.proname || ' of kind ' || p.prokind::text FROM pg_proc p
		WHERE p.pronamespace = 'retention'::regnamespace AND p.prokind <> 'f'
		UNION ALL
		SELECT 'sequence ' || s.seqrelid::regclass::text || ' with options' FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
		WHERE c.relnamespace = 'retention'::regnamespace
		  AND (s.seqstart <> 1 OR s.seqincrement <> 1 OR s.seqmin <> 1 OR s.seqcache <> 1 OR s.seqcycle
		       OR s.seqmax <> CASE s.seqtypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647
		                                      ELSE 9223372036854775807 END)
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("look for objects schema.sql cannot print: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for objects schema.sql cannot print: %w", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("the schema has objects schema.sql does not print yet; teach renderSchema (migrations/schemagen_test.go) "+
			"to print them: %s", strings.Join(found, "; "))
	}
	return nil
}

func loadCatalog(ctx context.Context, conn querier) (*catalog, error) {
	c := &catalog{relations: map[string]*relation{}, functions: map[string][]*function{}}
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int / 10000`).Scan(&c.pgMajor); err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	type query struct {
		what, sql string
		scan      func(pgx.CollectableRow) error
	}
	var name, kind, comment, def string
	queries := []query{
		{"relations", `
			SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END,
			       coalesce(obj_description(c.oid, 'pg_class'), ''),
			       CASE c.relkind WHEN 'v' THEN pg_get_viewdef(c.oid, true) ELSE '' END
			FROM pg_class c WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind IN ('r', 'v')
			ORDER BY 1`,
			func(r pgx.CollectableRow) error {
				if err := r.Scan(&name, &kind, &comment, &def); err != nil {
					return err
				}
				c.relations[name] = &relation{name: name, kind: kind, comment: comment, viewDef: strings.TrimSpace(def)}
				return nil
			}},
		{"columns", `
			SELECT c.relname, a.attname,
			       format_type(a.atttypid, a.atttypmod)
			       || CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || co.collname::text ELSE '' END
			       || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
			                             WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
			       || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
			               WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END
			       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
			       coalesce(col_description(c.oid, a.attnum), '')
			FROM pg_attribute a
			JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_type t ON t.oid = a.atttypid
			LEFT JOIN pg_collation co ON co.oid = a.attcollation
			LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
			WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY c.relname, a.attnum`,
			func(r pgx.CollectableRow) error {
				var col column
				if err := r.Scan(&name, &col.name, &col.def, &col.comment); err != nil {
					return err
				}
				rel := c.relations[name]
				rel.columns = append(rel.columns, col)
				return nil
			}},
		{"constraints", `
			SELECT c.relname, 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true)
			FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
			WHERE c.relnamespace = 'retention'::regnamespace
			ORDER BY c.relname, array_position(ARRAY['p', 'u', 'x', 'f', 'c', 't'], k.contype::text), k.conname`,
			func(r pgx.CollectableRow) error {
				if err := r.Scan(&name, &def); err != nil {
					return err
				}
				c.relations[name].constraints = append(c.relations[name].constraints, def)
				return nil
			}},
		{"indexes", `
			SELECT c.relname, pg_get_indexdef(i.indexrelid)
			FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
			WHERE c.relnamespace = 'retention'::regnamespace
			  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
			ORDER BY c.relname, ic.relname`,
			func(r pgx.CollectableRow) error {
				if err := r.Scan(&name, &def); err != nil {
					return err
				}
				c.relations[name].indexes = append(c.relations[name].indexes, def)
				return nil
			}},
		{"triggers", `
			SELECT c.relname, pg_get_triggerdef(t.oid, true)
			FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
			WHERE c.relnamespace = 'retention'::regnamespace AND NOT t.tgisinternal
			ORDER BY c.relname, t.tgname`,
			func(r pgx.CollectableRow) error {
				if err := r.Scan(&name, &def); err != nil {
					return err
				}
				c.relations[name].triggers = append(c.relations[name].triggers, def)
				return nil
			}},
		// A relation's privileges beyond its owner's; the default is none.
		{"relation grants", `
			SELECT rel, stmt FROM (
			    SELECT c.relname AS rel, format('GRANT %s ON %s TO %s%s;', a.privilege_type, c.oid::regclass,
			           CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
			           CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS stmt
			    FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
			    WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind IN ('r', 'v') AND a.grantee <> c.relowner) g
			ORDER BY rel, stmt COLLATE "C"`,
			func(r pgx.CollectableRow) error {
				if err := r.Scan(&name, &def); err != nil {
					return err
				}
				c.relations[name].grants = append(c.relations[name].grants, def)
				return nil
			}},
	}
	for _, q := range queries {
		rows, err := conn.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", q.what, err)
		}
		if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) { return struct{}{}, q.scan(r) }); err != nil {
			return nil, fmt.Errorf("read %s: %w", q.what, err)
		}
	}
	return c, loadFunctions(ctx, conn, c)
}

// loadFunctions reads the functions with their source and their privileges beyond the owner's.
// A function's default is that anyone may execute it: a revoke from PUBLIC is printed, and so is
// a grant to a role.
func loadFunctions(ctx context.Context, conn querier, c *catalog) error {
	rows, err := conn.Query(ctx, `
		SELECT p.proname, p.oid::regprocedure::text, pg_get_functiondef(p.oid),
		       coalesce(obj_description(p.oid, 'pg_proc'), ''),
		       (SELECT count(*) FROM unnest(coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs]::int[]))) m
		        WHERE m <> 't')::int,
		       p.proacl IS NULL
		       OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
		       coalesce((SELECT array_agg(format('GRANT %s ON FUNCTION %s TO %s%s;', a.privilege_type, p.oid::regprocedure,
		                                        quote_ident(r.rolname), CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
		                                  ORDER BY r.rolname, a.privilege_type)
		                 FROM aclexplode(p.proacl) a JOIN pg_roles r ON r.oid = a.grantee
		                 WHERE a.grantee <> p.proowner), ARRAY[]::text[])
		FROM pg_proc p WHERE p.pronamespace = 'retention'::regnamespace
		ORDER BY p.proname, p.oid::regprocedure::text COLLATE "C"`)
	if err != nil {
		return fmt.Errorf("read functions: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		f := &function{}
		var public bool
		var grants []string
		if err := r.Scan(&f.name, &f.signature, &f.def, &f.comment, &f.params, &public, &grants); err != nil {
			return struct{}{}, err
		}
		if !public {
			f.grants = append(f.grants, fmt.Sprintf("REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;", f.signature))
		}
		f.grants = append(f.grants, grants...)
		c.functions[f.name] = append(c.functions[f.name], f)
		return struct{}{}, nil
	})
	if err != nil {
		return fmt.Errorf("read functions: %w", err)
	}
	return nil
}

// place returns sections holding every relation that keep accepts: the given ones, then any
// they do not name. A name that is not in the schema is an error: the list is out of date.
func place(c *catalog, sections []section, what string, keep func(*relation) bool) ([]section, error) {
	var all []string
	for name, r := range c.relations {
		if keep(r) {
			all = append(all, name)
		}
	}
	return placeNames(sections, what, all, func(name string) bool { r, ok := c.relations[name]; return ok && keep(r) })
}

func placeFunctions(c *catalog) ([]section, error) {
	var all []string
	for name := range c.functions {
		all = append(all, name)
	}
	return placeNames(functionSections, "function", all, func(name string) bool { return len(c.functions[name]) > 0 })
}

func placeNames(sections []section, what string, all []string, exists func(string) bool) ([]section, error) {
	placed := map[string]bool{}
	for _, s := range sections {
		for _, name := range s.names {
			if !exists(name) {
				return nil, fmt.Errorf("section %q names %s retention.%s, which the migrations do not create: "+
					"remove it from migrations/schemasections_test.go", s.title, what, name)
			}
			placed[name] = true
		}
	}
	var rest []string
	for _, name := range all {
		if !placed[name] {
			rest = append(rest, name)
		}
	}
	if len(rest) == 0 {
		return sections, nil
	}
	slices.Sort(rest)
	return append(slices.Clone(sections), section{
		title: "Not yet placed in a section",
		about: "Add them to a section in migrations/schemasections_test.go and regenerate.",
		names: rest,
	}), nil
}

// history is what the migration files say of each object: where it was created and changed,
// and the comment written above each of those statements.
type history struct {
	latest    string // the last migration's file name
	files     []string
	mentions  map[string][]mention // "table policies", "view deletions", "function claim"
	strideUse []string             // migration files that write the deletion ID's stride
}

// mention is one statement of a migration about an object, with the comment above it.
type mention struct {
	file, verb, comment string
	params              int // a function's: the length of its argument list; -1 otherwise
}

var (
	statementPattern = regexp.MustCompile(`(?im)^[ \t]*(CREATE(?:[ \t]+OR[ \t]+REPLACE)?[ \t]+(?:TABLE|VIEW|FUNCTION)|ALTER[ \t]+TABLE|DROP[ \t]+(?:TABLE|VIEW|FUNCTION))` +
		`(?:[ \t]+IF[ \t]+(?:NOT[ \t]+)?EXISTS)?[ \t]+retention\.(\w+)`)
	renamePattern = regexp.MustCompile(`(?i)^ALTER\s+TABLE\s+retention\.(\w+)\s+RENAME\s+TO\s+(\w+)`)
)

// loadHistory reads the numbered migrations of fsys.
func loadHistory(fsys fs.FS) (*history, error) {
	files, err := fs.Glob(fsys, "[0-9]*.sql")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b string) int { return cmpNumber(a) - cmpNumber(b) })
	h := &history{files: files, mentions: map[string][]mention{}}
	if len(files) > 0 {
		h.latest = files[len(files)-1]
	}
	stride := strconv.Itoa(migrations.DeletionIDStride)
	renamed := map[string]string{} // old table name -> new
	for _, file := range files {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		text := string(b)
		if strings.Contains(text, stride) {
			h.strideUse = append(h.strideUse, file)
		}
		for _, m := range statementPattern.FindAllStringSubmatchIndex(text, -1) {
			verb := strings.Join(strings.Fields(strings.ToUpper(text[m[2]:m[3]])), " ")
			name := text[m[4]:m[5]]
			kind := strings.ToLower(strings.Fields(verb)[len(strings.Fields(verb))-1])
			mt := mention{file: file, verb: verb, comment: commentAbove(text, m[0]), params: -1}
			if kind == "function" {
				mt.params = countParams(text[m[1]:])
			}
			if rm := renamePattern.FindStringSubmatch(text[m[2]:]); rm != nil {
				renamed[rm[1]] = rm[2]
			}
			key := kind + " " + name
			h.mentions[key] = append(h.mentions[key], mt)
		}
	}
	// A renamed table's history is its new name's: deletions became deletions_v1 in 004.
	for old, name := range renamed {
		h.mentions["table "+name] = append(h.mentions["table "+old], h.mentions["table "+name]...)
		delete(h.mentions, "table "+old)
	}
	return h, nil
}

func cmpNumber(file string) int {
	n, _ := strconv.Atoi(strings.SplitN(file, "_", 2)[0])
	return n
}

// commentAbove returns the "--" lines right above offset, without the dashes.
func commentAbove(text string, offset int) string {
	lines := strings.Split(text[:offset], "\n")
	lines = lines[:len(lines)-1] // the statement's own line, up to offset
	start := len(lines)
	for start > 0 && strings.HasPrefix(strings.TrimSpace(lines[start-1]), "--") {
		start--
	}
	var out []string
	for _, l := range lines[start:] {
		l = strings.TrimPrefix(strings.TrimSpace(l), "--")
		out = append(out, strings.TrimPrefix(l, " "))
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// countParams counts the parameters of the argument list that text starts with ("(a int, b
// text) RETURNS ..."): the commas at its top level, plus one unless it is empty.
func countParams(text string) int {
	text = strings.TrimLeft(text, " \t\n")
	if !strings.HasPrefix(text, "(") {
		return -1
	}
	depth, n, empty := 0, 0, true
	for _, r := range text {
		switch r {
		case '(':
			depth++
			continue
		case ')':
			depth--
			if depth == 0 {
				if empty {
					return 0
				}
				return n + 1
			}
		case ',':
			if depth == 1 {
				n++
			}
		}
		if depth >= 1 && r != ' ' && r != '\t' && r != '\n' {
			empty = false
		}
	}
	return -1
}

// of returns the mentions of an object; for a function, those whose argument list has as many
// parameters as f, so an overload's history is its own.
func (h *history) of(kind, name string, f *function) []mention {
	var out []mention
	for _, m := range h.mentions[kind+" "+name] {
		if f == nil || m.params == f.params || m.verb == "DROP FUNCTION" && m.params == -1 {
			out = append(out, m)
		}
	}
	return out
}

func writeHeader(b *bytes.Buffer, c *catalog, h *history) error {
	version := migrations.Latest()
	if int(version) != len(h.files) {
		return fmt.Errorf("the migrations say version %d but there are %d numbered files", version, len(h.files))
	}
	fmt.Fprintf(b, "-- Code generated by `%s`. DO NOT EDIT.\n--\n", regenerateCommand)
	comment(b, fmt.Sprintf(`
The retention schema as the migrations leave it: version %d (the last migration is
migrations/%s), printed by PostgreSQL %d from a database they migrated.

This file is for reading. The numbered migrations are what `+"`retention migrate`"+` applies; this file is
never applied. To change the schema, add a migration, run the command above and commit both:
TestCurrentSchema fails while this file and the migrations disagree. Each function's source
below is its current one, whichever migration last restated it; above each object, the
migrations that created or changed it, with what they said of it.

Contents: 1. tables, by topic, each with its columns, constraints, indexes and triggers; 2.
views; 3. functions, by what they serve, each with its current source and any privilege that
differs from the default (anyone may execute a function; nobody but the owner may use a table).
Not here: the owner, and the roles with their grants (sql/roles.sql, which a superuser applies).`, version, h.latest, c.pgMajor))
	var copies []string
	stride := strconv.Itoa(migrations.DeletionIDStride)
	for _, name := range sortedKeys(c.relations) {
		if r := c.relations[name]; strings.Contains(r.viewDef, stride) {
			copies = append(copies, "  view retention."+name)
		}
	}
	for _, name := range sortedKeys(c.functions) {
		for _, f := range c.functions[name] {
			if strings.Contains(f.def, stride) {
				copies = append(copies, "  function "+f.signature)
			}
		}
	}
	if len(copies) == 0 {
		copies = append(copies, "  (none)")
	}
	b.WriteString("--\n")
	comment(b, fmt.Sprintf(`
The deletion ID. A recorded session's ID in retention.deletions is claim_id * %[1]s + ord (ord
its position in the claim, from 1). In Go it has a name, migrations.DeletionIDStride and
migrations.DeletionID, which every Go query and computation uses. SQL writes the number %[1]s
itself, in these current definitions:
%[2]s
and in the migrations %[3]s. TestDeletionIDIsOne (migrations) and TestDeletedRuleIsOne
(source) fail when a SQL copy and the Go name disagree.`, stride, strings.Join(copies, "\n"), strings.Join(h.strideUse, ", ")))
	b.WriteString("\n")
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// comment writes text as "--" lines: paragraphs (split by blank lines) are reflowed and wrapped
// at 100 columns; a line that starts with a space is an item of a list, written as it is.
func comment(b *bytes.Buffer, text string) {
	for i, para := range strings.Split(strings.Trim(text, "\n"), "\n\n") {
		if i > 0 {
			b.WriteString("--\n")
		}
		var lines []string
		for _, l := range strings.Split(para, "\n") {
			if len(lines) > 0 && !strings.HasPrefix(l, " ") && !strings.HasPrefix(lines[len(lines)-1], " ") {
				lines[len(lines)-1] += " " + l
				continue
			}
			lines = append(lines, l)
		}
		for _, line := range lines {
			if strings.HasPrefix(line, " ") {
				b.WriteString(strings.TrimRight("-- "+line, " ") + "\n")
				continue
			}
			for _, l := range wrap(line, 97) {
				b.WriteString("-- " + l + "\n")
			}
		}
	}
}

// wrap breaks s at spaces into lines of at most width characters where it can.
func wrap(s string, width int) []string {
	var lines []string
	for len(s) > width {
		cut := strings.LastIndex(s[:width+1], " ")
		if cut <= 0 {
			break
		}
		lines = append(lines, s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
	}
	return append(lines, s)
}

func part(b *bytes.Buffer, n, title string) {
	fmt.Fprintf(b, "\n%s\n-- %s. %s\n%s\n", strings.Repeat("-", 100), n, strings.ToUpper(title), strings.Repeat("-", 100))
}

func banner(b *bytes.Buffer, title, about string) {
	fmt.Fprintf(b, "\n-- %s\n-- %s\n", title, strings.Repeat("=", len(title)))
	if about != "" {
		comment(b, about)
	}
}

// writeHistory writes, for an object, the migrations that created or changed it and the comment
// each wrote above the statement, as it wrote it.
func writeHistory(b *bytes.Buffer, ms []mention) {
	for i, m := range ms {
		if i > 0 && m.comment == "" && m.file == ms[i-1].file && m.verb == ms[i-1].verb {
			continue // one line for several statements of one migration
		}
		fmt.Fprintf(b, "-- %s: %s\n", m.file, m.verb)
		for _, l := range strings.Split(m.comment, "\n") {
			if l != "" {
				b.WriteString(strings.TrimRight("--     "+l, " ") + "\n")
			}
		}
	}
}

func writeTable(b *bytes.Buffer, r *relation, h *history) {
	fmt.Fprintf(b, "\n-- retention.%s\n", r.name)
	if r.comment != "" {
		comment(b, r.comment)
	}
	writeHistory(b, h.of("table", r.name, nil))
	fmt.Fprintf(b, "CREATE TABLE retention.%s (\n", r.name)
	width := 0
	for _, col := range r.columns {
		width = max(width, len(col.name))
	}
	var items []string
	for _, col := range r.columns {
		items = append(items, fmt.Sprintf("    %-*s %s", width, col.name, col.def))
	}
	for _, k := range r.constraints {
		items = append(items, "    "+k)
	}
	b.WriteString(strings.Join(items, ",\n"))
	b.WriteString("\n);\n")
	for _, col := range r.columns {
		if col.comment != "" {
			fmt.Fprintf(b, "COMMENT ON COLUMN retention.%s.%s IS %s;\n", r.name, col.name, quoteLiteral(col.comment))
		}
	}
	for _, s := range r.indexes {
		b.WriteString(s + ";\n")
	}
	for _, s := range r.triggers {
		b.WriteString(s + ";\n")
	}
	for _, s := range r.grants {
		b.WriteString(s + "\n")
	}
}

func writeView(b *bytes.Buffer, r *relation, h *history) {
	fmt.Fprintf(b, "\n-- retention.%s\n", r.name)
	if r.comment != "" {
		comment(b, r.comment)
	}
	writeHistory(b, h.of("view", r.name, nil))
	fmt.Fprintf(b, "CREATE VIEW retention.%s AS\n%s\n", r.name, r.viewDef)
	for _, s := range r.triggers {
		b.WriteString(s + ";\n")
	}
	for _, s := range r.grants {
		b.WriteString(s + "\n")
	}
}

func writeFunction(b *bytes.Buffer, f *function, h *history) {
	fmt.Fprintf(b, "\n-- %s\n", f.signature)
	if f.comment != "" {
		comment(b, f.comment)
	}
	writeHistory(b, h.of("function", f.name, f))
	b.WriteString(strings.TrimRight(f.def, "\n") + ";\n")
	for _, s := range f.grants {
		b.WriteString(s + "\n")
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
