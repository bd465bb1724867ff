// Package audit checks the seal chain of retention.deletions: the evidence that no recorded
// deletion outcome was edited, removed or inserted after the fact.
//
// The database seals each outcome when it becomes final (migration 002): seal n holds
// hash_n = SHA-256(hash_{n-1} || Content(row)), with hash_0 = 32 zero bytes. Verify walks the
// chain, recomputes every hash from the deletion rows as they are now, and reports where the
// chain and the rows disagree. Content is the canonical encoding, defined here and in
// docs/COMPLIANCE.md, so anyone can recompute a hash without this code.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// FormatTag is the first field of every sealed record: it names the encoding.
const FormatTag = "retention.deletions/v1"

// Genesis is the previous hash of the first seal: 32 zero bytes.
var Genesis = make([]byte, sha256.Size)

// Row is one row of retention.deletions, every column of it.
type Row struct {
	ID                int64
	RunID             int64
	CharacterID       string
	SessionID         string
	Status            string
	Attempts          int32
	HTTPStatus        *int32
	Error             *string
	LastActiveAt      pgtype.Timestamptz
	PolicyID          *int64
	PolicyCharacterID *string
	MaxAge            pgtype.Interval
	RequestedAt       pgtype.Timestamptz
	CompletedAt       pgtype.Timestamptz
}

// Content is the canonical encoding of r, the bytes hashed after the previous hash. It is the
// concatenation of seventeen fields:
//
//	FormatTag, id, run_id, character_id, session_id, status, attempts, http_status, error,
//	last_active_at, policy_id, policy_character_id, max_age months, max_age days,
//	max_age microseconds, requested_at, completed_at
//
// each encoded as "-," when NULL, or otherwise as a netstring: the length of the value in UTF-8
// bytes in decimal, ":", the value, ",". Integers are decimal ("-" for negatives, no leading
// zeros); instants are whole microseconds since 1970-01-01T00:00:00Z in decimal, or "infinity"
// and "-infinity"; max_age is split into the months, days and microseconds PostgreSQL keeps.
// retention.seal_content computes the same bytes in the database.
func Content(r Row) []byte {
	e := &encoder{b: make([]byte, 0, 160+len(r.CharacterID)+len(r.SessionID))}
	e.field(FormatTag)
	e.integer(r.ID)
	e.integer(r.RunID)
	e.field(r.CharacterID)
	e.field(r.SessionID)
	e.field(r.Status)
	e.integer(int64(r.Attempts))
	e.optInt32(r.HTTPStatus)
	e.optText(r.Error)
	e.instant(r.LastActiveAt)
	e.optInt(r.PolicyID)
	e.optText(r.PolicyCharacterID)
	e.interval(r.MaxAge)
	e.instant(r.RequestedAt)
	e.instant(r.CompletedAt)
	return e.b
}

// Hash returns SHA-256(prev || Content(r)): the hash of the seal of r when prev is the hash of
// the seal before it (Genesis for the first).
func Hash(prev []byte, r Row) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(Content(r))
	return h.Sum(nil)
}

// Checkpoint names one seal by its position and hash. The head of the chain, noted down by an
// auditor, is a checkpoint a later Verify can be asked to confirm.
type Checkpoint struct {
	Seq  int64
	Hash []byte
}

// String returns "SEQ:HEX", the form ParseCheckpoint reads.
func (c Checkpoint) String() string {
	return strconv.FormatInt(c.Seq, 10) + ":" + hex.EncodeToString(c.Hash)
}

// ParseCheckpoint reads "SEQ:HEX" (the form Checkpoint.String and `retention audit verify`
// print). A malformed value is a *CheckpointError.
func ParseCheckpoint(s string) (Checkpoint, error) {
	seqText, hashText, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Checkpoint{}, &CheckpointError{Value: s, Reason: "want SEQ:HASH, e.g. 1042:5f0c…, as audit verify prints it"}
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 1 {
		return Checkpoint{}, &CheckpointError{Value: s, Reason: fmt.Sprintf("sequence number %q is not a positive integer", seqText)}
	}
	hash, err := hex.DecodeString(hashText)
	if err != nil || len(hash) != sha256.Size {
		return Checkpoint{}, &CheckpointError{Value: s, Reason: "the hash is not 64 hexadecimal digits"}
	}
	return Checkpoint{Seq: seq, Hash: hash}, nil
}
