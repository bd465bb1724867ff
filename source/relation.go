package source

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultRelation is the source the job reads when none is named.
const DefaultRelation = "retention.sessions"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// Relation is a validated SCHEMA.RELATION name.
type Relation struct {
	Schema, Name string
}

// ParseRelation validates a SCHEMA.RELATION name given by an operator. Each part must be a plain
// SQL identifier (letters, digits, _ and $, not starting with a digit, at most 63 bytes). Like
// PostgreSQL does with unquoted names, it folds them to lower case. Anything else is an
// *InvalidRelationError, returned before the database is touched.
func ParseRelation(s string) (Relation, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 2 {
		return Relation{}, &InvalidRelationError{Value: s, Reason: "want SCHEMA.RELATION, e.g. public.convai_sessions_v"}
	}
	for _, p := range parts {
		if len(p) > 63 {
			return Relation{}, &InvalidRelationError{Value: s, Reason: fmt.Sprintf("%q is longer than 63 bytes", p)}
		}
		if !identRE.MatchString(p) {
			return Relation{}, &InvalidRelationError{Value: s, Reason: "each part must be a plain identifier: letters, digits, _ or $, not starting with a digit"}
		}
	}
	return Relation{Schema: strings.ToLower(parts[0]), Name: strings.ToLower(parts[1])}, nil
}

// String returns the name as SCHEMA.RELATION, unquoted.
func (r Relation) String() string { return r.Schema + "." + r.Name }

// quoted returns the name quoted for SQL.
func (r Relation) quoted() string { return pgx.Identifier{r.Schema, r.Name}.Sanitize() }
