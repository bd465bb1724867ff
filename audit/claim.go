package audit

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// ClaimTag is the first field of a policy claim's leaf: it names the encoding.
const ClaimTag = "retention.claim/v2"

// ErasureClaimTag is the first field of an erasure claim's leaf: the v2 fields, then the
// request's terms.
const ErasureClaimTag = "retention.claim/v3"

// Claim is one recorded claim of retention.claims with its outcomes: one leaf of the log.
type Claim struct {
	ID                int64
	RunID             int64
	CharacterID       string
	PolicyID          *int64
	PolicyCharacterID *string
	MaxAge            pgtype.Interval
	RequestedAt       pgtype.Timestamptz
	SessionIDs        []string
	LastActiveAt      []pgtype.Timestamptz
	Outcomes          []Outcome
	// Erasure is the request an erasure claim was sent under; nil for a policy's claim.
	Erasure *ErasureTerms
}

// ErasureTerms are the terms of an erasure request a leaf seals (its reason is left out: it
// may name a person, and must stay redactable).
type ErasureTerms struct {
	ID          int64
	SessionID   *string
	RequestedBy string
	RequestedAt pgtype.Timestamptz
	DueAt       pgtype.Timestamptz
}

// Outcome is one row of retention.outcomes.
type Outcome struct {
	Ord         int32
	SessionID   string
	Status      string
	Attempts    int32
	HTTPStatus  *int32
	Error       *string
	CompletedAt pgtype.Timestamptz
}

// encoder writes the netstring fields shared by the v1 encoding (Content) and the v2 ones
// (ClaimContent, VerificationContent).
type encoder struct{ b []byte }

func (e *encoder) field(v string) {
	e.b = strconv.AppendInt(e.b, int64(len(v)), 10)
	e.b = append(e.b, ':')
	e.b = append(e.b, v...)
	e.b = append(e.b, ',')
}
func (e *encoder) null()           { e.b = append(e.b, '-', ',') }
func (e *encoder) integer(v int64) { e.field(strconv.FormatInt(v, 10)) }
func (e *encoder) optText(v *string) {
	if v == nil {
		e.null()
		return
	}
	e.field(*v)
}
func (e *encoder) optInt(v *int64) {
	if v == nil {
		e.null()
		return
	}
	e.integer(*v)
}
func (e *encoder) optInt32(v *int32) {
	if v == nil {
		e.null()
		return
	}
	e.integer(int64(*v))
}
func (e *encoder) instant(t pgtype.Timestamptz) {
	switch {
	case !t.Valid:
		e.null()
	case t.InfinityModifier == pgtype.Infinity:
		e.field("infinity")
	case t.InfinityModifier == pgtype.NegativeInfinity:
		e.field("-infinity")
	default:
		e.integer(t.Time.UnixMicro())
	}
}
func (e *encoder) interval(v pgtype.Interval) {
	if !v.Valid {
		e.null()
		e.null()
		e.null()
		return
	}
	e.integer(int64(v.Months))
	e.integer(int64(v.Days))
	e.integer(v.Microseconds)
}

// ClaimContent is the canonical encoding of a recorded claim, the data of its leaf (the leaf's
// record hash is SHA-256(0x00 || content), tlog.RecordHash). Fields are netstrings ("-," for
// NULL), as in Content:
//
//	ClaimTag, id, run_id, character_id, policy_id, policy_character_id, max_age months,
//	max_age days, max_age microseconds, requested_at, number of sessions,
//
// An erasure claim's starts with ErasureClaimTag and has, before the number of sessions, the
// request's id, session_id, requested_by, requested_at and due_at (policy and max_age NULL),
//
// then for each outcome in ord order:
//
//	ord, session_id, last_active_at (the claim's, at ord), status, attempts, http_status,
//	error, completed_at
//
// retention.claim_content computes the same bytes in the database.
func ClaimContent(c Claim) []byte {
	e := &encoder{b: make([]byte, 0, 128+len(c.Outcomes)*96)}
	if c.Erasure != nil {
		e.field(ErasureClaimTag)
	} else {
		e.field(ClaimTag)
	}
	e.integer(c.ID)
	e.integer(c.RunID)
	e.field(c.CharacterID)
	e.optInt(c.PolicyID)
	e.optText(c.PolicyCharacterID)
	e.interval(c.MaxAge)
	e.instant(c.RequestedAt)
	if r := c.Erasure; r != nil {
		e.integer(r.ID)
		e.optText(r.SessionID)
		e.field(r.RequestedBy)
		e.instant(r.RequestedAt)
		e.instant(r.DueAt)
	}
	e.integer(int64(len(c.SessionIDs)))
	for _, o := range c.Outcomes {
		e.integer(int64(o.Ord))
		e.field(o.SessionID)
		if i := int(o.Ord) - 1; i >= 0 && i < len(c.LastActiveAt) {
			e.instant(c.LastActiveAt[i])
		} else {
			e.null()
		}
		e.field(o.Status)
		e.integer(int64(o.Attempts))
		e.optInt32(o.HTTPStatus)
		e.optText(o.Error)
		e.instant(o.CompletedAt)
	}
	return e.b
}

// LeafSession is one session as a leaf's content states it.
type LeafSession struct {
	CharacterID string `json:"character_id"`
	SessionID   string `json:"session_id"`
	Status      string `json:"status"`
	// CompletedAtMicros is completed_at as microseconds since 1970-01-01 UTC, as encoded.
	CompletedAtMicros string `json:"completed_at_unix_micros"`
	RunID             string `json:"run_id"`
	ClaimID           string `json:"claim_id"`
	// ErasureRequestID names the erasure request the session was sent under ("" for a
	// policy's deletion).
	ErasureRequestID string `json:"erasure_request_id,omitempty"`
}

// ParseClaimContent reads the sessions out of a v2 or v3 leaf's content, checking that it is well
// formed. It is what an offline check uses to see what a proven leaf says.
func ParseClaimContent(b []byte) ([]LeafSession, error) {
	fields, err := netstrings(b)
	if err != nil {
		return nil, err
	}
	const per = 8
	head := 11
	if len(fields) > 0 && fields[0] != nil && *fields[0] == ErasureClaimTag {
		head = 16
	} else if len(fields) == 0 || fields[0] == nil || *fields[0] != ClaimTag {
		return nil, fmt.Errorf("not a %s or %s leaf", ClaimTag, ErasureClaimTag)
	}
	if len(fields) < head || fields[head-1] == nil || (head == 16 && fields[10] == nil) {
		return nil, errors.New("malformed leaf: its head is incomplete")
	}
	if (len(fields)-head)%per != 0 {
		return nil, errors.New("malformed leaf: the outcomes do not have 8 fields each")
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	var out []LeafSession
	for i := head; i < len(fields); i += per {
		out = append(out, LeafSession{CharacterID: str(fields[3]), SessionID: str(fields[i+1]), Status: str(fields[i+3]),
			CompletedAtMicros: str(fields[i+7]), RunID: str(fields[2]), ClaimID: str(fields[1])})
		if head == 16 {
			out[len(out)-1].ErasureRequestID = str(fields[10])
		}
	}
	return out, nil
}

// netstrings splits a leaf's content into its fields, nil for "-,".
func netstrings(b []byte) ([]*string, error) {
	var fields []*string
	for len(b) > 0 {
		if len(b) >= 2 && b[0] == '-' && b[1] == ',' {
			fields = append(fields, nil)
			b = b[2:]
			continue
		}
		i := 0
		for i < len(b) && i < 12 && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(b) || b[i] != ':' {
			return nil, errors.New("malformed leaf: a field is not a netstring")
		}
		n, err := strconv.Atoi(string(b[:i]))
		if err != nil || i+1+n >= len(b)+1 || i+1+n >= len(b) || b[i+1+n] != ',' {
			return nil, errors.New("malformed leaf: a netstring's length is wrong")
		}
		v := string(b[i+1 : i+1+n])
		fields = append(fields, &v)
		b = b[i+2+n:]
	}
	return fields, nil
}
