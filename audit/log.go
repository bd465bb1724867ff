package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/migrations"
)

// The kinds of Problem the v2 log check reports.
const (
	// LeafEdited: a claim or its outcomes no longer hash to the claim's leaf.
	LeafEdited Kind = "leaf_edited"
	// LeafMissing: leaf indexes have a gap, or a leaf's claim is gone.
	LeafMissing Kind = "leaf_missing"
	// HashMismatch: a stored hash of the tree is not the one the leaves give.
	HashMismatch Kind = "hash_mismatch"
	// RootMismatch: a recorded tree root (head, seal history, a run's checkpoint) is not the
	// root the leaves give for its size.
	RootMismatch Kind = "root_mismatch"
	// UnsealedClaim: a claim has outcomes but no leaf and is not waiting for one: its outcomes
	// were written outside the protocol.
	UnsealedClaim Kind = "unsealed_claim"
	// UnsealedMemory: a memory erasure or memory deletion has no leaf and is not waiting for
	// one: it was written outside the protocol.
	UnsealedMemory Kind = "unsealed_memory"
	// BadSignature: a checkpoint's signed note does not verify with the keys given.
	BadSignature Kind = "bad_signature"
)

// LogResult is what the check of the v2 log found (it is part of Result).
type LogResult struct {
	// Leaves is the tree size the rows give.
	Leaves int64 `json:"leaves"`
	// Root is the tree's root for Leaves, hex.
	Root string `json:"root"`
	// Queued counts recorded claims, memory erasures and memory deletions waiting for the next
	// seal (a running run's, or a dead run's until the next run seals them): not a problem.
	Queued int64 `json:"queued"`
	// MemoryLeaves counts the leaves that record a memory erasure or a memory deletion.
	MemoryLeaves int64 `json:"memory_leaves"`
	// Checkpoints counts the checkpoints checked: the runs' and those given.
	Checkpoints int `json:"checkpoints"`
}

// KeyName is the name of the keys retention signs checkpoints with.
const KeyName = "retention-checkpoint"

// GenerateKey returns a new signing key and its verifier key, in the text forms of
// golang.org/x/mod/sumdb/note.
func GenerateKey() (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, KeyName)
}

// Signer signs checkpoints with a note signing key.
type Signer struct{ s note.Signer }

// NewSigner reads a signing key as GenerateKey writes it. The error never contains the key.
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, errors.New("the checkpoint signing key is malformed: make one with retention audit keygen")
	}
	return &Signer{s: s}, nil
}

// Sign returns the signed note of a tree: tlog.FormatTree text, signed.
func (s *Signer) Sign(size int64, root []byte) (string, error) {
	var h tlog.Hash
	if len(root) != len(h) {
		return "", fmt.Errorf("root has %d bytes, want %d", len(root), len(h))
	}
	copy(h[:], root)
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: size, Hash: h}))}, s.s)
	if err != nil {
		return "", fmt.Errorf("sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// OpenCheckpoint verifies a signed checkpoint note with the verifier keys and returns its tree.
// An error never quotes a key.
func OpenCheckpoint(msg []byte, vkeys ...string) (tlog.Tree, error) {
	var vs []note.Verifier
	for i, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			// Not quoted: the file given may hold the signing key by mistake.
			return tlog.Tree{}, fmt.Errorf("verifier key %d is malformed (%w): give the line retention audit keygen printed", i+1, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint text: %w", err)
	}
	return t, nil
}

// memHashes is a tlog.HashReader over the stored hashes Verify recomputed.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d is not in the tree", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

const leavesSQL = `
	SELECT l.idx, coalesce(l.claim_id, 0), l.memory_erasure_id, l.memory_deletion_id,
	       num_nonnulls(l.claim_id, l.memory_erasure_id, l.memory_deletion_id), l.hash, c.id IS NOT NULL, coalesce(c.run_id, 0), coalesce(c.character_id, ''),
	       c.policy_id, c.policy_character_id, c.max_age, c.requested_at,
	       coalesce(c.session_ids, '{}'), coalesce(c.last_active_at, '{}'),
	       e.id, e.session_id, e.requested_by, e.requested_at, e.due_at
	FROM retention.log_leaves l
	LEFT JOIN retention.claims c ON c.id = l.claim_id
	LEFT JOIN retention.erasure_requests e ON e.id = c.erasure_request_id
	WHERE l.idx > $1
	ORDER BY l.idx
	LIMIT $2`

// verifyLog recomputes the v2 log from the claims and outcomes, the memory erasures and the
// memory deletions: every leaf, every stored hash,
// every recorded root and the runs' checkpoints; then checks the given checkpoints.
func (v *verifier) verifyLog(ctx context.Context, tx pgx.Tx, opts Options) error {
	hashes, n, complete, err := v.rebuildLog(ctx, tx, opts.BatchSize)
	if err != nil || !complete {
		return err // the tree cannot be checked past a gap in the leaves
	}
	v.res.Log.Leaves = n
	root, err := tlog.TreeHash(n, hashes)
	if err != nil {
		return fmt.Errorf("log root: %w", err)
	}
	v.res.Log.Root = hex.EncodeToString(root[:])
	v.logRoot, v.logHashes = root, hashes

	if err := v.checkStoredHashes(ctx, tx); err != nil {
		return err
	}
	if err := v.checkLogRoots(ctx, tx, opts.VerifierKeys); err != nil {
		return err
	}
	v.checkGivenCheckpoints(opts)
	if err := v.checkUnsealedClaims(ctx, tx); err != nil {
		return err
	}
	return v.checkUnsealedMemory(ctx, tx)
}

// logLeaf is one leaf of the v2 log with the record it names, as the rows give it: a claim
// (claimID), a memory erasure (memoryErasureID) or a memory deletion (memoryDeletionID).
type logLeaf struct {
	idx, claimID     int64
	memoryErasureID  *int64
	memoryDeletionID *int64
	records          int // how many records the leaf names: 1, unless the row was edited
	hash             []byte
	found            bool // the record still exists
	c                Claim
	me               MemoryErasure
	md               MemoryDeletion
}

// content is the leaf's content as the rows give it now.
func (l logLeaf) content() []byte {
	switch {
	case l.memoryErasureID != nil:
		return MemoryErasureContent(l.me)
	case l.memoryDeletionID != nil:
		return MemoryDeletionContent(l.md)
	}
	return ClaimContent(l.c)
}

// rebuildLog walks the leaves in batches, checks each against its record and rebuilds the tree
// from the rows as they are, so that a stored hash that disagrees shows. complete is false when
// the leaf indexes have a gap: it is reported and the tree cannot be rebuilt past it.
func (v *verifier) rebuildLog(ctx context.Context, tx pgx.Tx, batchSize int) (hashes memHashes, n int64, complete bool, err error) {
	after := int64(-1)
	for {
		batch, err := readLeaves(ctx, tx, after, batchSize)
		if err != nil {
			return nil, 0, false, err
		}
		for _, b := range batch {
			if b.idx != n {
				v.report(Problem{Kind: LeafMissing, Seq: n + 1, Detail: fmt.Sprintf("leaves %d to %d are missing: they were removed", n, b.idx-1)})
				return nil, 0, false, nil
			}
			rec := tlog.RecordHash(b.content())
			if b.records != 1 {
				v.report(Problem{Kind: LeafEdited, Seq: n + 1,
					Detail: fmt.Sprintf("leaf %d names %d records (claim, memory erasure, memory deletion), not one: its row was edited", n, b.records)})
			}
			if b.memoryErasureID != nil || b.memoryDeletionID != nil {
				v.res.Log.MemoryLeaves++
				v.checkMemoryLeaf(n, b, rec)
			} else {
				v.checkLeaf(n, b, rec)
			}
			stored, err := tlog.StoredHashesForRecordHash(n, rec, hashes)
			if err != nil {
				return nil, 0, false, fmt.Errorf("rebuild log: %w", err)
			}
			hashes = append(hashes, stored...)
			n++
			after = b.idx
		}
		if len(batch) < batchSize {
			return hashes, n, true, nil
		}
	}
}

// checkLeaf reports a leaf whose claim is gone, whose claim or outcomes no longer hash to it,
// or whose outcomes do not match the claimed sessions. rec is the record hash of the claim.
func (v *verifier) checkLeaf(n int64, b logLeaf, rec tlog.Hash) {
	switch {
	case !b.found:
		v.report(Problem{Kind: LeafMissing, Seq: n + 1, Detail: fmt.Sprintf("leaf %d names claim %d, which is gone", n, b.claimID)})
	case !bytes.Equal(rec[:], b.hash):
		v.report(Problem{Kind: LeafEdited, Seq: n + 1, DeletionID: migrations.DeletionID(b.claimID, 0),
			Detail: fmt.Sprintf("claim %d (run %d, character %q) or its outcomes were edited: they no longer hash to leaf %d", b.claimID, b.c.RunID, b.c.CharacterID, n)})
	default:
		for i, o := range b.c.Outcomes {
			if int(o.Ord) != i+1 || i >= len(b.c.SessionIDs) || o.SessionID != b.c.SessionIDs[i] {
				v.report(Problem{Kind: LeafEdited, Seq: n + 1, Detail: fmt.Sprintf("claim %d: outcome %d does not match the claimed session", b.claimID, i+1)})
				return
			}
		}
	}
}

// checkMemoryLeaf reports a leaf whose memory erasure or deletion is gone, or no longer hashes
// to it. rec is the record hash of the row.
func (v *verifier) checkMemoryLeaf(n int64, b logLeaf, rec tlog.Hash) {
	what := ""
	switch {
	case b.memoryErasureID != nil:
		what = fmt.Sprintf("memory erasure %d", *b.memoryErasureID)
		if b.found {
			what += fmt.Sprintf(" (run %d, end user request %d)", b.me.RunID, b.me.Request.ID)
		}
	default:
		what = fmt.Sprintf("memory deletion %d", *b.memoryDeletionID)
		if b.found {
			what += fmt.Sprintf(" (run %d, character %q)", b.md.RunID, b.md.CharacterID)
		}
	}
	switch {
	case !b.found:
		v.report(Problem{Kind: LeafMissing, Seq: n + 1, Detail: fmt.Sprintf("leaf %d names %s, which is gone", n, what)})
	case !bytes.Equal(rec[:], b.hash):
		v.report(Problem{Kind: LeafEdited, Seq: n + 1,
			Detail: fmt.Sprintf("%s or its request was edited: it no longer hashes to leaf %d", what, n)})
	}
}

// readLeaves reads up to limit leaves after index after, each with its record: a claim with
// its erasure terms and its outcomes, a memory erasure with its request's terms, or a memory
// deletion.
func readLeaves(ctx context.Context, tx pgx.Tx, after int64, limit int) ([]logLeaf, error) {
	var batch []logLeaf
	var l logLeaf
	var er ErasureTerms
	var erID *int64
	var erBy *string
	err := pgrows.Each(ctx, tx, "read log leaves", leavesSQL, []any{after, limit},
		[]any{&l.idx, &l.claimID, &l.memoryErasureID, &l.memoryDeletionID, &l.records, &l.hash, &l.found, &l.c.RunID, &l.c.CharacterID,
			&l.c.PolicyID, &l.c.PolicyCharacterID, &l.c.MaxAge, &l.c.RequestedAt, &l.c.SessionIDs, &l.c.LastActiveAt,
			&erID, &er.SessionID, &erBy, &er.RequestedAt, &er.DueAt}, func() {
			c := l
			c.hash = bytes.Clone(l.hash)
			c.memoryErasureID, c.memoryDeletionID = clonePtr(l.memoryErasureID), clonePtr(l.memoryDeletionID)
			c.c.ID = l.claimID
			c.c.Erasure = nil
			if erID != nil {
				t := er
				t.ID = *erID
				if erBy != nil {
					t.RequestedBy = *erBy
				}
				c.c.Erasure = &t
			}
			batch = append(batch, c)
		})
	if err != nil {
		return nil, err
	}
	if len(batch) == 0 {
		return nil, nil
	}
	if err := readLeafOutcomes(ctx, tx, batch); err != nil {
		return nil, err
	}
	if err := readLeafMemoryErasures(ctx, tx, batch); err != nil {
		return nil, err
	}
	if err := readLeafMemoryDeletions(ctx, tx, batch); err != nil {
		return nil, err
	}
	return batch, nil
}

// keyed returns the keys of batch, in order, and the position of each key in batch: the rows
// read for the batch (WHERE key = ANY(keys)) are added to its elements through the positions.
func keyed[T any](batch []T, key func(T) int64) ([]int64, map[int64]int) {
	keys := make([]int64, len(batch))
	at := make(map[int64]int, len(batch))
	for i, b := range batch {
		keys[i] = key(b)
		at[keys[i]] = i
	}
	return keys, at
}

// keyedSome is keyed for the elements of batch that have a key (key returns nil for the others).
func keyedSome[T any](batch []T, key func(T) *int64) ([]int64, map[int64]int) {
	var keys []int64
	at := map[int64]int{}
	for i, b := range batch {
		if k := key(b); k != nil {
			keys = append(keys, *k)
			at[*k] = i
		}
	}
	return keys, at
}

// clonePtr returns a pointer to a copy of *p, nil for nil: a scanned row's pointer is reused.
func clonePtr(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// readLeafOutcomes adds to each leaf's claim its outcomes, in order.
func readLeafOutcomes(ctx context.Context, tx pgx.Tx, batch []logLeaf) error {
	ids, at := keyed(batch, func(l logLeaf) int64 { return l.claimID })
	var claimID int64
	var o Outcome
	return pgrows.Each(ctx, tx, "read outcomes", `
		SELECT claim_id, ord, session_id, status, attempts, http_status, error, completed_at
		FROM retention.outcomes WHERE claim_id = ANY($1) ORDER BY claim_id, ord`, []any{ids},
		[]any{&claimID, &o.Ord, &o.SessionID, &o.Status, &o.Attempts, &o.HTTPStatus, &o.Error, &o.CompletedAt}, func() {
			b := &batch[at[claimID]]
			b.c.Outcomes = append(b.c.Outcomes, o)
		})
}

// checkStoredHashes compares the stored hashes of the tree with the ones the leaves give.
func (v *verifier) checkStoredHashes(ctx context.Context, tx pgx.Tx) error {
	hashes := v.logHashes
	var bad, count int64
	var id int64
	var h []byte
	err := pgrows.Each(ctx, tx, "read log hashes", `SELECT id, hash FROM retention.log_hashes ORDER BY id`, nil,
		[]any{&id, &h}, func() {
			count++
			if id >= int64(len(hashes)) || !bytes.Equal(hashes[id][:], h) {
				bad++
				if bad == 1 {
					v.report(Problem{Kind: HashMismatch, Detail: fmt.Sprintf("stored hash %d is not the one the leaves give: the tree was rewritten", id)})
				}
			}
		})
	if err != nil {
		return err
	}
	if count != int64(len(hashes)) && bad == 0 {
		v.report(Problem{Kind: HashMismatch, Detail: fmt.Sprintf("the log stores %d hashes; the leaves give %d", count, len(hashes))})
	}
	return nil
}

// checkLogRoots checks the recorded roots against the rebuilt tree: the head, every seal's,
// every run's checkpoint (and its signature when keys are given).
func (v *verifier) checkLogRoots(ctx context.Context, tx pgx.Tx, keys []string) error {
	n := v.res.Log.Leaves
	var size int64
	var root []byte
	if err := tx.QueryRow(ctx, `SELECT size, root FROM retention.log_head`).Scan(&size, &root); err != nil {
		return fmt.Errorf("read log head: %w", err)
	}
	v.checkLogRoot("the log head", size, root, nil, keys)
	if size != n {
		v.report(Problem{Kind: RootMismatch, Detail: fmt.Sprintf("the log head names %d leaves, the log has %d", size, n)})
	}
	err := pgrows.Each(ctx, tx, "read log roots", `SELECT size, root FROM retention.log_roots ORDER BY size`, nil,
		[]any{&size, &root}, func() {
			v.checkLogRoot(fmt.Sprintf("the root recorded at size %d", size), size, bytes.Clone(root), nil, keys)
		})
	if err != nil {
		return err
	}
	var runID *int64
	var note *string
	return pgrows.Each(ctx, tx, "read checkpoints", `SELECT run_id, size, root, note FROM retention.checkpoints ORDER BY id`, nil,
		[]any{&runID, &size, &root, &note}, func() {
			v.res.Log.Checkpoints++
			what := "a checkpoint"
			if runID != nil {
				what = fmt.Sprintf("the checkpoint of run %d", *runID)
			}
			v.checkLogRoot(what, size, bytes.Clone(root), note, keys)
		})
}

// checkLogRoot checks one recorded root, named by what, against the rebuilt tree's root for its
// size, and its signed note, if any, against keys.
func (v *verifier) checkLogRoot(what string, size int64, root []byte, note *string, keys []string) {
	if n := v.res.Log.Leaves; size > n {
		v.report(Problem{Kind: RootMismatch, Detail: fmt.Sprintf("%s names a tree of %d leaves, but the log has %d: leaves were removed", what, size, n)})
		return
	}
	want, err := tlog.TreeHash(size, v.logHashes)
	if err == nil && !bytes.Equal(want[:], root) {
		v.report(Problem{Kind: RootMismatch, Detail: fmt.Sprintf("%s: the tree of %d leaves has root %x, not %x: the log up to it was rewritten", what, size, want, root)})
	}
	if note != nil && len(keys) > 0 {
		t, err := OpenCheckpoint([]byte(*note), keys...)
		switch {
		case err != nil:
			v.report(Problem{Kind: BadSignature, Detail: fmt.Sprintf("%s: %v", what, err)})
		case t.N != size || !bytes.Equal(t.Hash[:], root):
			v.report(Problem{Kind: BadSignature, Detail: fmt.Sprintf("%s: the signed note names another tree (%d leaves) than its row", what, t.N)})
		}
	}
}

// checkGivenCheckpoints checks the checkpoints kept outside the database: the log must extend
// each (a consistency proof).
func (v *verifier) checkGivenCheckpoints(opts Options) {
	n := v.res.Log.Leaves
	for i, msg := range opts.SignedCheckpoints {
		v.res.Log.Checkpoints++
		t, err := OpenCheckpoint(msg, opts.VerifierKeys...)
		if err != nil {
			v.report(Problem{Kind: BadSignature, Detail: fmt.Sprintf("checkpoint %d given: %v", i+1, err)})
			continue
		}
		if t.N == 0 {
			// Every log extends the empty tree, whose root is the hash of nothing.
			if empty, _ := tlog.TreeHash(0, nil); t.Hash != empty {
				v.report(Problem{Kind: CheckpointMismatch, Detail: fmt.Sprintf("checkpoint %d given names an empty tree with root %s, not the empty tree's", i+1, t.Hash)})
			}
			continue
		}
		if t.N > n {
			v.report(Problem{Kind: CheckpointMismatch, Detail: fmt.Sprintf("checkpoint %d given names %d leaves; the log has only %d: leaves were removed", i+1, t.N, n)})
			continue
		}
		proof, err := tlog.ProveTree(n, t.N, v.logHashes)
		if err == nil {
			err = tlog.CheckTree(proof, n, v.logRoot, t.N, t.Hash)
		}
		if err != nil {
			v.report(Problem{Kind: CheckpointMismatch, Detail: fmt.Sprintf("checkpoint %d given (%d leaves, root %s): the log does not extend it: it was rewritten", i+1, t.N, t.Hash)})
		}
	}
}

// checkUnsealedClaims counts the claims queued for the next seal and reports outcomes outside
// the log: a claim with outcomes has a leaf, or waits in the queue.
func (v *verifier) checkUnsealedClaims(ctx context.Context, tx pgx.Tx) error {
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM retention.unsealed`).Scan(&v.res.Log.Queued); err != nil {
		return fmt.Errorf("count queued records: %w", err)
	}
	var id int64
	return pgrows.Each(ctx, tx, "find unsealed claims", `
		SELECT DISTINCT o.claim_id FROM retention.outcomes o
		WHERE NOT EXISTS (SELECT 1 FROM retention.log_leaves l WHERE l.claim_id = o.claim_id
		                  AND l.memory_erasure_id IS NULL AND l.memory_deletion_id IS NULL)
		  AND NOT EXISTS (SELECT 1 FROM retention.unsealed u WHERE u.claim_id = o.claim_id
		                  AND u.memory_erasure_id IS NULL AND u.memory_deletion_id IS NULL)
		ORDER BY 1`, nil, []any{&id}, func() {
		v.report(Problem{Kind: UnsealedClaim, DeletionID: migrations.DeletionID(id, 0), Detail: fmt.Sprintf("claim %d has outcomes but no leaf: they were written outside the protocol", id)})
	})
}

// checkUnsealedMemory reports memory erasures and memory deletions outside the log: each has a
// leaf, or waits in the queue.
func (v *verifier) checkUnsealedMemory(ctx context.Context, tx pgx.Tx) error {
	var what string
	var id int64
	return pgrows.Each(ctx, tx, "find unsealed memory records", `
		SELECT 'memory erasure', m.id FROM retention.memory_erasures m
		WHERE NOT EXISTS (SELECT 1 FROM retention.log_leaves l WHERE l.memory_erasure_id = m.id
		                  AND l.claim_id IS NULL AND l.memory_deletion_id IS NULL)
		  AND NOT EXISTS (SELECT 1 FROM retention.unsealed u WHERE u.memory_erasure_id = m.id
		                  AND u.claim_id IS NULL AND u.memory_deletion_id IS NULL)
		UNION ALL
		SELECT 'memory deletion', d.id FROM retention.memory_deletions d
		WHERE NOT EXISTS (SELECT 1 FROM retention.log_leaves l WHERE l.memory_deletion_id = d.id
		                  AND l.claim_id IS NULL AND l.memory_erasure_id IS NULL)
		  AND NOT EXISTS (SELECT 1 FROM retention.unsealed u WHERE u.memory_deletion_id = d.id
		                  AND u.claim_id IS NULL AND u.memory_erasure_id IS NULL)
		ORDER BY 1, 2`, nil, []any{&what, &id}, func() {
		v.report(Problem{Kind: UnsealedMemory, Detail: fmt.Sprintf("%s %d has no leaf: it was written outside the protocol", what, id)})
	})
}
