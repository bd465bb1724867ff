package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/source"
)

// readKeyFile reads a small regular file holding a key or a signed checkpoint, given as name
// (a flag or a variable). Anything else (a FIFO, a device, a directory, a file over maxKeyFile)
// is refused without reading it, and no error quotes it.
func readKeyFile(name, path string) (string, error) {
	b, err := readFile(name, path, maxKeyFile)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// checkpointSigner returns what signs each run's checkpoint: the note key in
// RETENTION_CHECKPOINT_KEY_FILE, each signed note also written to RETENTION_CHECKPOINT_DIR (as
// run-ID.note and latest.note), a place outside the database. Nil when neither is set.
func (a *app) checkpointSigner(log *slog.Logger) (source.Signer, error) {
	keyFile, dir := a.getenv("RETENTION_CHECKPOINT_KEY_FILE"), a.getenv("RETENTION_CHECKPOINT_DIR")
	if keyFile == "" && dir == "" {
		return nil, nil
	}
	if keyFile == "" {
		return nil, usagef("RETENTION_CHECKPOINT_DIR is set without RETENTION_CHECKPOINT_KEY_FILE: checkpoints written outside the database must be signed (make a key with: retention audit keygen)")
	}
	skey, err := readKeyFile("RETENTION_CHECKPOINT_KEY_FILE", keyFile)
	if err != nil {
		return nil, err
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		return nil, usagef("RETENTION_CHECKPOINT_KEY_FILE: %v", err)
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, usagef("RETENTION_CHECKPOINT_DIR %s is not a directory", dir)
		}
	}
	return func(ctx context.Context, runID, size int64, root []byte) (string, error) {
		note, err := signer.Sign(size, root)
		if err != nil {
			return "", err
		}
		if dir != "" {
			for _, name := range []string{fmt.Sprintf("run-%d.note", runID), "latest.note"} {
				if err := writeFileAtomic(filepath.Join(dir, name), []byte(note)); err != nil {
					return "", fmt.Errorf("write checkpoint: %w", err)
				}
			}
		}
		log.Info("checkpoint signed", "run_id", runID, "tree_size", size, "root", fmt.Sprintf("%x", root), "dir", dir)
		return note, nil
	}, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
