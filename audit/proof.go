package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrNotInLog is returned by Prove when the session has no sealed deleted outcome.
var ErrNotInLog = errors.New("no sealed deletion of this session in the log")

// ErrMemoryNotInLog is returned by ProveMemoryErasure when no memory erasure of the end user
// (with the character, or of the record) that says erased is sealed in the log.
var ErrMemoryNotInLog = errors.New("no sealed memory erasure of this end user in the log")

// Proof shows that a session's deletion (or, with EndUserID, an end user's memory erasure) is in
// the log: the leaf that records it, its inclusion proof, and the checkpoint the proof leads to.
// Check (CheckMemoryErasure) verifies it with no database.
type Proof struct {
	CharacterID string `json:"character_id"`
	SessionID   string `json:"session_id"`
	// EndUserID is set for the proof of a memory erasure (ProveMemoryErasure): CharacterID is
	// then the character whose memory was erased, "" for the end user's record.
	EndUserID string `json:"end_user_id,omitempty"`
	// LeafIndex is the leaf's position in the log, from 0.
	LeafIndex int64 `json:"leaf_index"`
	// Leaf is the leaf's content (ClaimContent, or MemoryErasureContent for a memory erasure),
	// the bytes whose record hash is in the tree.
	Leaf []byte `json:"leaf"`
	// Hashes is the inclusion proof (tlog.RecordProof) for a tree of TreeSize leaves.
	Hashes   []tlog.Hash `json:"hashes"`
	TreeSize int64       `json:"tree_size"`
	// Checkpoint is the signed note of the tree the proof is for, if a run signed one; else
	// TreeRoot alone says the root.
	Checkpoint string    `json:"checkpoint,omitempty"`
	TreeRoot   tlog.Hash `json:"tree_root"`
}

// dbHashes reads stored hashes of the log in tx.
type dbHashes struct {
	ctx context.Context
	tx  pgx.Tx
}

func (d dbHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	rows, err := d.tx.Query(d.ctx, `SELECT u.ord, h.hash FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, ord)
		LEFT JOIN retention.log_hashes h ON h.id = u.id ORDER BY u.ord`, indexes)
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	var ord int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&ord, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("log hash %d is missing", indexes[ord-1])
		}
		copy(out[ord-1][:], h)
		return nil
	})
	return out, err
}

// Prove returns the inclusion proof of the sealed deletion of one session, for the newest
// checkpoint a run stored that covers it (or the log head when none does).
func Prove(ctx context.Context, db Beginner, characterID, sessionID string) (*Proof, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose
	p := &Proof{CharacterID: characterID, SessionID: sessionID}
	var claimID int64
	err = tx.QueryRow(ctx, `
		SELECT l.idx, l.claim_id FROM retention.outcomes o
		JOIN retention.log_leaves l ON l.claim_id = o.claim_id
		WHERE o.character_id = $1 AND o.session_id = $2 AND o.status = 'deleted'
		ORDER BY o.epoch DESC LIMIT 1`, characterID, sessionID).Scan(&p.LeafIndex, &claimID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w (character %q, session %q)", ErrNotInLog, characterID, sessionID)
	}
	if err != nil {
		return nil, fmt.Errorf("find the session's leaf: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT retention.claim_content($1)`, claimID).Scan(&p.Leaf); err != nil {
		return nil, fmt.Errorf("read the leaf: %w", err)
	}
	return p, proveLeaf(ctx, tx, p)
}

// ProveMemoryErasure returns the inclusion proof of the last memory erasure of endUserID: of
// their memory with characterID, or, with characterID "", of their record. The checkpoint is
// chosen as Prove's. It refuses, wrapping ErrMemoryNotInLog, when there is none, when the last
// one does not say erased (pending, failed, ...), when a verification found memory again since
// (the erasure is refuted: the next run erases again), when it waits for the next seal, or when
// its row no longer hashes to its leaf.
func ProveMemoryErasure(ctx context.Context, db Beginner, endUserID, characterID string) (*Proof, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose
	p := &Proof{CharacterID: characterID, EndUserID: endUserID}
	var (
		id         int64
		status     string
		leaf       *int64
		sealedHash []byte
		refuted    bool
	)
	err = tx.QueryRow(ctx, `
		SELECT m.id, m.status, l.idx, l.hash, m.status = 'erased' AND m.character_id IS NOT NULL AND retention.memory_found_again(m.id),
		       retention.memory_erasure_content(m.id)
		FROM retention.memory_erasures m
		JOIN retention.end_user_requests q ON q.id = m.request_id
		LEFT JOIN retention.log_leaves l ON l.memory_erasure_id = m.id
		WHERE q.end_user_id = $1 AND m.character_id IS NOT DISTINCT FROM nullif($2, '')
		ORDER BY m.id DESC LIMIT 1`, endUserID, characterID).Scan(&id, &status, &leaf, &sealedHash, &refuted, &p.Leaf)
	what := fmt.Sprintf("end user %q, %s", endUserID, memoryWhat(characterID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w (%s)", ErrMemoryNotInLog, what)
	case err != nil:
		return nil, fmt.Errorf("find the memory erasure's leaf: %w", err)
	case status != "erased":
		return nil, fmt.Errorf("%w (%s): its last memory erasure, %d, says %s", ErrMemoryNotInLog, what, id, status)
	case refuted:
		return nil, fmt.Errorf("%w (%s): a verification found memory again after memory erasure %d; the next run erases it again",
			ErrMemoryNotInLog, what, id)
	case leaf == nil:
		return nil, fmt.Errorf("%w (%s): memory erasure %d waits for the next seal", ErrMemoryNotInLog, what, id)
	}
	if rec := tlog.RecordHash(p.Leaf); !bytes.Equal(rec[:], sealedHash) {
		return nil, fmt.Errorf("%w: memory erasure %d no longer hashes to its leaf %d: run retention audit verify", ErrChainBroken, id, *leaf)
	}
	p.LeafIndex = *leaf
	return p, proveLeaf(ctx, tx, p)
}

// memoryWhat names what a memory erasure proof is of.
func memoryWhat(characterID string) string {
	if characterID == "" {
		return "the end user's record"
	}
	return fmt.Sprintf("character %q", characterID)
}

// proveLeaf fills in p's tree, checkpoint and inclusion proof for its leaf: the newest
// checkpoint a run stored that covers it, or the log head when none does.
func proveLeaf(ctx context.Context, tx pgx.Tx, p *Proof) error {
	var root []byte
	var note *string
	err := tx.QueryRow(ctx, `
		SELECT size, root, note FROM retention.checkpoints WHERE size > $1 ORDER BY size DESC, id DESC LIMIT 1`,
		p.LeafIndex).Scan(&p.TreeSize, &root, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT size, root FROM retention.log_head`).Scan(&p.TreeSize, &root)
	}
	if err != nil {
		return fmt.Errorf("read the checkpoint: %w", err)
	}
	copy(p.TreeRoot[:], root)
	if note != nil {
		p.Checkpoint = *note
	}
	p.Hashes, err = tlog.ProveRecord(p.TreeSize, p.LeafIndex, dbHashes{ctx, tx})
	if err != nil {
		return fmt.Errorf("prove leaf %d in a tree of %d: %w", p.LeafIndex, p.TreeSize, err)
	}
	return nil
}

// Check verifies a Proof with no database: the checkpoint's signature with the verifier keys
// (required when the proof carries a signed checkpoint), the inclusion of the leaf in that
// tree, and that the leaf records the session as deleted. It returns what the leaf says of the
// session.
func Check(p *Proof, vkeys ...string) (LeafSession, error) {
	if p.EndUserID != "" {
		return LeafSession{}, errors.New("this is the proof of a memory erasure: check it with CheckMemoryErasure")
	}
	if err := checkInclusion(p, vkeys); err != nil {
		return LeafSession{}, err
	}
	sessions, err := ParseClaimContent(p.Leaf)
	if err != nil {
		return LeafSession{}, err
	}
	for _, s := range sessions {
		if s.CharacterID == p.CharacterID && s.SessionID == p.SessionID {
			if s.Status != "deleted" {
				return s, fmt.Errorf("the leaf records session %q as %s, not deleted", p.SessionID, s.Status)
			}
			return s, nil
		}
	}
	return LeafSession{}, fmt.Errorf("the leaf does not name session %q of character %q", p.SessionID, p.CharacterID)
}

// checkInclusion checks the checkpoint's signature with the verifier keys (required when the
// proof carries a signed checkpoint) and the inclusion of the leaf in that tree.
func checkInclusion(p *Proof, vkeys []string) error {
	tree := tlog.Tree{N: p.TreeSize, Hash: p.TreeRoot}
	if p.Checkpoint != "" {
		if len(vkeys) == 0 {
			return errors.New("the proof carries a signed checkpoint: give the verifier key to check it")
		}
		t, err := OpenCheckpoint([]byte(p.Checkpoint), vkeys...)
		if err != nil {
			return err
		}
		tree = t
	} else if len(vkeys) > 0 {
		return errors.New("the proof has no signed checkpoint to check the key against")
	}
	if err := tlog.CheckRecord(p.Hashes, tree.N, tree.Hash, p.LeafIndex, tlog.RecordHash(p.Leaf)); err != nil {
		return fmt.Errorf("the leaf is not in the tree of the checkpoint: %w", err)
	}
	return nil
}

// CheckMemoryErasure verifies the proof of a memory erasure with no database, as Check does a
// session's: the checkpoint's signature, the leaf's inclusion, and that the leaf records the
// proof's end user's memory with its character (or their record) as erased. It returns what
// the leaf says.
func CheckMemoryErasure(p *Proof, vkeys ...string) (LeafMemoryErasure, error) {
	if p.EndUserID == "" {
		return LeafMemoryErasure{}, errors.New("this is the proof of a session's deletion: check it with Check")
	}
	if err := checkInclusion(p, vkeys); err != nil {
		return LeafMemoryErasure{}, err
	}
	m, err := ParseMemoryErasureContent(p.Leaf)
	if err != nil {
		return LeafMemoryErasure{}, err
	}
	switch {
	case m.EndUserID != p.EndUserID || m.CharacterID != p.CharacterID:
		return m, fmt.Errorf("the leaf records end user %q (%s), not the end user and character the proof names",
			m.EndUserID, memoryWhat(m.CharacterID))
	case m.Status != "erased":
		return m, fmt.Errorf("the leaf records the memory erasure as %s, not erased", m.Status)
	}
	return m, nil
}
