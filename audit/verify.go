package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/convai-retention/retention/internal/pgrows"
)

// Kind says what a Problem is.
type Kind string

// The kinds of Problem Verify reports.
const (
	// Edited: the deletion row no longer hashes to its seal.
	Edited Kind = "edited"
	// DeletionRemoved: a seal names a deletion row that is gone.
	DeletionRemoved Kind = "deletion_removed"
	// SealsRemoved: seals are missing from the sequence (a gap in seq).
	SealsRemoved Kind = "seals_removed"
	// Inserted: a seal that the next one links past, so it was put into the chain later.
	Inserted Kind = "inserted"
	// LinkBroken: a seal does not link to the one before it: one was removed, replaced or
	// inserted between them.
	LinkBroken Kind = "link_broken"
	// Unsealed: a final deletion row with no seal: it was inserted or finalised outside the
	// protocol (with the triggers disabled).
	Unsealed Kind = "unsealed"
	// HeadMismatch: the chain head does not name the last seal: seals at the end were removed,
	// or the head was edited.
	HeadMismatch Kind = "head_mismatch"
	// CheckpointMismatch: a checkpoint noted earlier is not in the chain any more.
	CheckpointMismatch Kind = "checkpoint_mismatch"
)

// Problem is one place where the chain and the rows disagree.
type Problem struct {
	Kind Kind `json:"kind"`
	// Seq is the seal where the problem shows, 0 when it concerns no seal.
	Seq int64 `json:"seq,omitempty"`
	// DeletionID is the retention.deletions row concerned, 0 when none.
	DeletionID int64  `json:"deletion_id,omitempty"`
	Detail     string `json:"detail"`
}

func (p Problem) String() string {
	switch {
	case p.Seq != 0 && p.DeletionID != 0:
		return fmt.Sprintf("seal %d (deletion %d): %s", p.Seq, p.DeletionID, p.Detail)
	case p.Seq != 0:
		return fmt.Sprintf("seal %d: %s", p.Seq, p.Detail)
	case p.DeletionID != 0:
		return fmt.Sprintf("deletion %d: %s", p.DeletionID, p.Detail)
	}
	return p.Detail
}

// Result is what Verify found.
type Result struct {
	// Sealed is how many seals the chain has.
	Sealed int64 `json:"sealed"`
	// Head is the last seal (seq 0 and Genesis for an empty chain): note it down, and pass it to
	// a later Verify as a checkpoint.
	Head Checkpoint `json:"-"`
	// HeadSeq and HeadHash are Head for JSON.
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// Problems are the first problems found (at most Options.MaxProblems), in chain order, then
	// unsealed rows, then the head and the checkpoints.
	Problems []Problem `json:"problems"`
	// ProblemCount is how many problems there are in all.
	ProblemCount int64 `json:"problem_count"`
	// Log is what the check of the v2 log (recording v2) found.
	Log LogResult `json:"log"`
	// Verifications is what the check of the verification chain (retention verify) found.
	Verifications VerificationResult `json:"verifications"`
}

// Intact reports whether Verify found nothing wrong.
func (r *Result) Intact() bool { return r.ProblemCount == 0 }

// Err returns nil for an intact chain, or an error wrapping ErrChainBroken that names the first
// problem.
func (r *Result) Err() error {
	if r.Intact() {
		return nil
	}
	return fmt.Errorf("%w: %d problem(s), the first at %s", ErrChainBroken, r.ProblemCount, r.Problems[0])
}

// Options tunes Verify.
type Options struct {
	// Checkpoints are seals noted earlier (e.g. the head printed by a previous verify) that
	// must still be in the chain with the same hash. Default: none.
	Checkpoints []Checkpoint
	// BatchSize is how many seals one query reads. Default 10,000.
	BatchSize int
	// MaxProblems is how many problems Result.Problems keeps; all are counted. Default 100.
	MaxProblems int
	// SignedCheckpoints are signed checkpoint notes of the v2 log kept outside the database
	// (written by runs to --checkpoint-dir): each must verify with VerifierKeys, and the log must
	// extend it. Default: none.
	SignedCheckpoints [][]byte
	// VerifierKeys verify the signed notes: those given, and those the runs stored. Default:
	// none (the stored notes' signatures are then not checked).
	VerifierKeys []string
}

// Beginner starts transactions; *pgxpool.Pool and *pgx.Conn are Beginners.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Verify walks the whole chain in one read-only, repeatable-read transaction (a consistent
// snapshot, while runs keep sealing) and recomputes each seal's hash from its deletion row and
// the previous hash it records; then the v2 log (verifyLog) and the verification chain
// (verifyVerifications) in the same snapshot. It resynchronises after each problem, so one edited row is
// reported once, not as a broken chain from there on. The error is for failures to read;
// problems are in the Result (see Result.Err).
func Verify(ctx context.Context, db Beginner, opts Options) (*Result, error) {
	opts.BatchSize = cmp.Or(opts.BatchSize, 10_000)
	opts.MaxProblems = cmp.Or(opts.MaxProblems, 100)
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose

	v := &verifier{res: &Result{}, max: opts.MaxProblems, lastHash: Genesis, wanted: map[int64][]byte{}}
	for _, c := range opts.Checkpoints {
		v.wanted[c.Seq] = c.Hash
	}
	if err := v.walk(ctx, tx, opts.BatchSize); err != nil {
		return nil, err
	}
	if err := v.unsealed(ctx, tx); err != nil {
		return nil, err
	}
	if err := v.head(ctx, tx); err != nil {
		return nil, err
	}
	v.checkpoints(opts.Checkpoints)
	if err := v.verifyLog(ctx, tx, opts); err != nil {
		return nil, err
	}
	if err := v.verifyVerifications(ctx, tx, opts.BatchSize); err != nil {
		return nil, err
	}
	v.res.Head = Checkpoint{Seq: v.lastSeq, Hash: v.lastHash}
	v.res.HeadSeq, v.res.HeadHash = v.lastSeq, hex.EncodeToString(v.lastHash)
	if v.res.Problems == nil {
		v.res.Problems = []Problem{}
	}
	return v.res, nil
}

type verifier struct {
	res *Result
	max int
	// lastSeq and lastHash are the seal walked last, as stored; beforeHash the one before it.
	lastSeq              int64
	lastHash, beforeHash []byte
	wanted               map[int64][]byte
	seen                 map[int64][]byte // checkpoints found in the chain
	// logRoot and logHashes are the v2 tree as the rows give it.
	logRoot   tlog.Hash
	logHashes memHashes
}

func (v *verifier) report(p Problem) {
	v.res.ProblemCount++
	if len(v.res.Problems) < v.max {
		v.res.Problems = append(v.res.Problems, p)
	}
}

const sealsSQL = `
	SELECT s.seq, s.deletion_id, s.prev_hash, s.hash, d.id IS NOT NULL,
	       coalesce(d.id, 0), coalesce(d.run_id, 0), coalesce(d.character_id, ''), coalesce(d.session_id, ''),
	       coalesce(d.status, ''), coalesce(d.attempts, 0), d.http_status, d.error, d.last_active_at,
	       d.policy_id, d.policy_character_id, d.max_age, d.requested_at, d.completed_at
	FROM retention.seals s
	LEFT JOIN retention.deletions_v1 d ON d.id = s.deletion_id
	WHERE s.seq > $1
	ORDER BY s.seq
	LIMIT $2`

func (v *verifier) walk(ctx context.Context, tx pgx.Tx, batch int) error {
	v.seen = map[int64][]byte{}
	after := int64(-1 << 62)
	for {
		var (
			seq, deletionID int64
			prev, hash      []byte
			found           bool
			r               Row
			n               int
		)
		err := pgrows.Each(ctx, tx, "read seals", sealsSQL, []any{after, batch},
			[]any{&seq, &deletionID, &prev, &hash, &found,
				&r.ID, &r.RunID, &r.CharacterID, &r.SessionID, &r.Status, &r.Attempts, &r.HTTPStatus, &r.Error,
				&r.LastActiveAt, &r.PolicyID, &r.PolicyCharacterID, &r.MaxAge, &r.RequestedAt, &r.CompletedAt,
			}, func() {
				n++
				v.seal(seq, deletionID, bytes.Clone(prev), bytes.Clone(hash), found, r)
				after = seq
			})
		if err != nil {
			return err
		}
		if n < batch {
			return nil
		}
	}
}

// seal checks one seal against the one walked before it and against its deletion row.
func (v *verifier) seal(seq, deletionID int64, prev, hash []byte, found bool, r Row) {
	v.res.Sealed++
	gap := seq != v.lastSeq+1
	switch {
	case gap && seq <= v.lastSeq:
		// Cannot happen while seq is the primary key; reported rather than trusted.
		v.report(Problem{Kind: LinkBroken, Seq: seq, DeletionID: deletionID, Detail: "seal numbers are out of order"})
	case gap && seq == v.lastSeq+2:
		v.report(Problem{Kind: SealsRemoved, Seq: v.lastSeq + 1,
			Detail: fmt.Sprintf("seal %d is missing: it was removed", v.lastSeq+1)})
	case gap:
		v.report(Problem{Kind: SealsRemoved, Seq: v.lastSeq + 1,
			Detail: fmt.Sprintf("seals %d to %d are missing: they were removed", v.lastSeq+1, seq-1)})
	case !bytes.Equal(prev, v.lastHash) && v.lastSeq > 0 && bytes.Equal(prev, v.beforeHash):
		v.report(Problem{Kind: Inserted, Seq: v.lastSeq,
			Detail: fmt.Sprintf("seal %d was inserted: seal %d links past it to seal %d", v.lastSeq, seq, v.lastSeq-1)})
	case !bytes.Equal(prev, v.lastHash) && v.lastSeq == 0:
		v.report(Problem{Kind: LinkBroken, Seq: seq, DeletionID: deletionID,
			Detail: "the first seal does not start from the genesis hash (32 zero bytes): seals before it were removed or replaced"})
	case !bytes.Equal(prev, v.lastHash):
		v.report(Problem{Kind: LinkBroken, Seq: seq, DeletionID: deletionID,
			Detail: fmt.Sprintf("does not link to seal %d: a seal between them was removed, replaced or inserted", v.lastSeq)})
	}
	switch {
	case !found:
		v.report(Problem{Kind: DeletionRemoved, Seq: seq, DeletionID: deletionID, Detail: "the sealed deletion row was removed"})
	case !bytes.Equal(Hash(prev, r), hash):
		v.report(Problem{Kind: Edited, Seq: seq, DeletionID: deletionID,
			Detail: "the deletion row was edited: its content no longer matches its seal"})
	}
	if _, ok := v.wanted[seq]; ok {
		v.seen[seq] = hash
	}
	v.beforeHash, v.lastHash, v.lastSeq = v.lastHash, hash, seq
}

// unsealed reports final rows without a seal.
func (v *verifier) unsealed(ctx context.Context, tx pgx.Tx) error {
	var id int64
	var status string
	return pgrows.Each(ctx, tx, "find unsealed outcomes", `
		SELECT d.id, d.status FROM retention.deletions_v1 d
		WHERE d.status <> 'pending'
		  AND NOT EXISTS (SELECT 1 FROM retention.seals s WHERE s.deletion_id = d.id)
		ORDER BY d.id`, nil, []any{&id, &status}, func() {
		v.report(Problem{Kind: Unsealed, DeletionID: id,
			Detail: fmt.Sprintf("is %s but not sealed: it was inserted or finalised outside the protocol", status)})
	})
}

// head compares the chain head with the last seal walked.
func (v *verifier) head(ctx context.Context, tx pgx.Tx) error {
	var seq int64
	var hash []byte
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM retention.seal_head`).Scan(&seq, &hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		v.report(Problem{Kind: HeadMismatch, Detail: "the chain head row is gone"})
		return nil
	case err != nil:
		return fmt.Errorf("read chain head: %w", err)
	}
	if seq != v.lastSeq || !bytes.Equal(hash, v.lastHash) {
		v.report(Problem{Kind: HeadMismatch, Seq: seq, Detail: fmt.Sprintf(
			"the chain head names seal %d (%x), but the last seal is %d (%x): seals at the end were removed, or the head was edited",
			seq, hash, v.lastSeq, v.lastHash)})
	}
	return nil
}

// checkpoints reports each checkpoint not found in the chain with its hash.
func (v *verifier) checkpoints(cs []Checkpoint) {
	for _, c := range cs {
		got, ok := v.seen[c.Seq]
		switch {
		case !ok:
			v.report(Problem{Kind: CheckpointMismatch, Seq: c.Seq,
				Detail: fmt.Sprintf("the checkpoint %s is not in the chain: seal %d is missing", c, c.Seq)})
		case !bytes.Equal(got, c.Hash):
			v.report(Problem{Kind: CheckpointMismatch, Seq: c.Seq,
				Detail: fmt.Sprintf("the checkpoint %s does not match: seal %d now has hash %x, so the chain up to it was rewritten", c, c.Seq, got)})
		}
	}
}
