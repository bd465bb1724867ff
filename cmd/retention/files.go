package main

import (
	"github.com/convai-retention/retention/internal/boundedfile"
)

// The most bytes read from each kind of file the job is given besides the secret files (whose
// bound is secret.MaxFileSize). A bigger file is refused unread.
const (
	// maxKeyFile bounds a note key or a signed checkpoint: each is about 100 to 300 bytes.
	maxKeyFile = 4 << 10
	// maxProofFile bounds an inclusion proof: a few KiB for a log of billions of leaves.
	maxProofFile = 16 << 20
	// maxPolicyFile bounds a policy file: tens of thousands of characters fit in 4 MiB.
	maxPolicyFile = 4 << 20
)

// readFile reads the file path, given as what (a flag or a variable), with boundedfile.Read: it
// never blocks on a FIFO, reads only a regular file, and at most limit bytes. A file it refuses
// is a usage error naming what, the file and the reason, never the content.
func readFile(what, path string, limit int64) ([]byte, error) {
	b, err := boundedfile.Read(path, limit)
	if err != nil {
		return nil, usagef("%s: %v", what, err)
	}
	return b, nil
}
