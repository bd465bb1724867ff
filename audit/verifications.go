package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/migrations"
)

// The kinds of Problem the check of the verification chain reports.
const (
	// VerificationEdited: a batch of verifications, or one of its rows, no longer hashes to the
	// batch's hash, or a row disagrees with its batch or with the deletion it names.
	VerificationEdited Kind = "verification_edited"
	// VerificationLinkBroken: a batch does not link to the one before it, or the sequence has a
	// gap: batches were removed, replaced or inserted.
	VerificationLinkBroken Kind = "verification_link_broken"
	// VerificationHeadMismatch: the chain's head does not name the last batch.
	VerificationHeadMismatch Kind = "verification_head_mismatch"
)

// VerificationTag is the first field of a batch's content: it names the encoding.
const VerificationTag = "retention.verification/v1"

// VerificationBatch is one row of retention.verification_batches with its verifications.
type VerificationBatch struct {
	Seq           int64
	VerifyID      int64
	CharacterID   string
	ListedAt      pgtype.Timestamptz
	RecordedAt    pgtype.Timestamptz
	Count         int32
	PrevHash      []byte
	Hash          []byte
	Verifications []Verification
}

// Verification is one row of retention.verifications.
type Verification struct {
	Pos         int32
	DeletionID  int64
	CharacterID string
	SessionID   string
	Result      string
}

// VerificationContent is the canonical encoding of a batch, as retention.verification_content
// computes it: netstrings of VerificationTag, seq, verify_id, character_id, listed_at,
// recorded_at, count, then per verification in pos order: pos, deletion_id, session_id, result.
// The batch's hash is SHA-256(prev_hash || content).
func VerificationContent(b VerificationBatch) []byte {
	e := &encoder{b: make([]byte, 0, 96+len(b.Verifications)*48)}
	e.field(VerificationTag)
	e.integer(b.Seq)
	e.integer(b.VerifyID)
	e.field(b.CharacterID)
	e.instant(b.ListedAt)
	e.instant(b.RecordedAt)
	e.integer(int64(b.Count))
	for _, v := range b.Verifications {
		e.integer(int64(v.Pos))
		e.integer(v.DeletionID)
		e.field(v.SessionID)
		e.field(v.Result)
	}
	return e.b
}

// VerificationResult is what the check of the verification chain found.
type VerificationResult struct {
	// Batches and Verifications count the chain's batches and their rows.
	Batches       int64 `json:"batches"`
	Verifications int64 `json:"verifications"`
	// HeadSeq and HeadHash are the last batch: note them down to compare with a later check.
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash"`
}

const verificationBatchesSQL = `
	SELECT seq, verify_id, character_id, listed_at, recorded_at, count, prev_hash, hash
	FROM retention.verification_batches WHERE seq > $1 ORDER BY seq LIMIT $2`

// verificationRowsSQL reads the rows of some batches with the character and session of the
// deletion each names (a v2 row's id is migrations.DeletionID of its claim and position; a v1
// row's its own).
var verificationRowsSQL = fmt.Sprintf(`
	SELECT v.batch_seq, v.pos, v.deletion_id, v.character_id, v.session_id, v.result,
	       coalesce(o.character_id, d.character_id), coalesce(o.session_id, d.session_id)
	FROM retention.verifications v
	LEFT JOIN retention.outcomes o ON o.claim_id = v.deletion_id / %[1]d AND o.ord = (v.deletion_id %% %[1]d)::integer
	LEFT JOIN retention.deletions_v1 d ON d.id = v.deletion_id
	WHERE v.batch_seq = ANY($1)
	ORDER BY v.batch_seq, v.pos`, migrations.DeletionIDStride)

// verifyVerifications walks the verification chain: every batch's hash is recomputed from its
// rows and the previous hash, every link and the head are checked, and every row must name a
// deletion of its batch's character with its session.
func (v *verifier) verifyVerifications(ctx context.Context, tx pgx.Tx, batchSize int) error {
	prev := make([]byte, sha256.Size) // the head's hash before the first batch
	var lastSeq int64
	for {
		batch, err := readVerificationBatches(ctx, tx, lastSeq, batchSize)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		if err := v.readVerificationRows(ctx, tx, batch); err != nil {
			return err
		}
		for _, b := range batch {
			v.checkVerificationBatch(b, lastSeq, prev)
			prev, lastSeq = b.Hash, b.Seq
		}
		if len(batch) < batchSize {
			break
		}
	}
	return v.checkVerificationHead(ctx, tx, lastSeq, prev)
}

// readVerificationBatches reads up to limit batches of the chain after seq after, without
// their rows.
func readVerificationBatches(ctx context.Context, tx pgx.Tx, after int64, limit int) ([]VerificationBatch, error) {
	var batch []VerificationBatch
	var b VerificationBatch
	err := pgrows.Each(ctx, tx, "read verification batches", verificationBatchesSQL, []any{after, limit},
		[]any{&b.Seq, &b.VerifyID, &b.CharacterID, &b.ListedAt, &b.RecordedAt, &b.Count, &b.PrevHash, &b.Hash}, func() {
			c := b
			c.PrevHash, c.Hash = bytes.Clone(b.PrevHash), bytes.Clone(b.Hash)
			batch = append(batch, c)
		})
	if err != nil {
		return nil, err
	}
	return batch, nil
}

// readVerificationRows adds to each batch its rows and reports a row that names a deletion
// that does not exist, or one of another character or session.
func (v *verifier) readVerificationRows(ctx context.Context, tx pgx.Tx, batch []VerificationBatch) error {
	seqs, at := keyed(batch, func(b VerificationBatch) int64 { return b.Seq })
	var seq int64
	var r Verification
	var delChar, delSess *string
	return pgrows.Each(ctx, tx, "read verifications", verificationRowsSQL, []any{seqs},
		[]any{&seq, &r.Pos, &r.DeletionID, &r.CharacterID, &r.SessionID, &r.Result, &delChar, &delSess}, func() {
			b := &batch[at[seq]]
			b.Verifications = append(b.Verifications, r)
			v.res.Verifications.Verifications++
			switch {
			case delChar == nil:
				v.report(Problem{Kind: VerificationEdited, Detail: fmt.Sprintf("verification batch %d, row %d: deletion %d does not exist", seq, r.Pos, r.DeletionID)})
			case *delChar != b.CharacterID || r.CharacterID != b.CharacterID || *delSess != r.SessionID:
				v.report(Problem{Kind: VerificationEdited, Detail: fmt.Sprintf("verification batch %d, row %d: it names session %q of %q, deletion %d is of session %q of %q",
					seq, r.Pos, r.SessionID, r.CharacterID, r.DeletionID, *delSess, *delChar)})
			}
		})
}

// checkVerificationBatch checks one batch against the one before it (lastSeq, whose hash is
// prev): no batch missing between them, the link, and the batch's hash over its rows.
func (v *verifier) checkVerificationBatch(b VerificationBatch, lastSeq int64, prev []byte) {
	v.res.Verifications.Batches++
	if b.Seq != lastSeq+1 {
		v.report(Problem{Kind: VerificationLinkBroken, Detail: fmt.Sprintf("verification batches %d to %d are missing", lastSeq+1, b.Seq-1)})
	}
	if !bytes.Equal(b.PrevHash, prev) {
		v.report(Problem{Kind: VerificationLinkBroken, Detail: fmt.Sprintf("verification batch %d does not link to the batch before it", b.Seq)})
	}
	sum := sha256.Sum256(append(bytes.Clone(b.PrevHash), VerificationContent(b)...))
	if !bytes.Equal(sum[:], b.Hash) || int(b.Count) != len(b.Verifications) {
		v.report(Problem{Kind: VerificationEdited, Detail: fmt.Sprintf("verification batch %d (verify run %d, character %q) or its rows were edited: they no longer hash to the batch's hash",
			b.Seq, b.VerifyID, b.CharacterID)})
	}
}

// checkVerificationHead compares the chain's stored head with its last batch (lastSeq, whose
// hash is last) and records the head in the result.
func (v *verifier) checkVerificationHead(ctx context.Context, tx pgx.Tx, lastSeq int64, last []byte) error {
	var headSeq int64
	var headHash []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM retention.verification_head`).Scan(&headSeq, &headHash); err != nil {
		return fmt.Errorf("read the verification chain's head: %w", err)
	}
	if headSeq != lastSeq || !bytes.Equal(headHash, last) {
		v.report(Problem{Kind: VerificationHeadMismatch, Detail: fmt.Sprintf("the verification chain's head names batch %d, the last batch is %d", headSeq, lastSeq)})
	}
	v.res.Verifications.HeadSeq, v.res.Verifications.HeadHash = lastSeq, hex.EncodeToString(last)
	return nil
}
