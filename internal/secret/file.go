package secret

import (
	"errors"
	"strings"

	"github.com/convai-retention/retention/internal/boundedfile"
)

// MaxFileSize is the most bytes ReadFile reads from a secret file. API keys, passwords and
// connection strings are far shorter; a bigger file is not a secret file.
const MaxFileSize = 4 << 10

// FileError is returned by ReadFile when a secret file cannot be used. Its message names the
// file and the reason, never the file's content.
type FileError = boundedfile.Error

// ReadFile returns the content of the secret file path with surrounding white space (such as a
// final newline) removed. It reads with boundedfile.Read: it refuses, with a *FileError,
// anything but a regular file (a FIFO, a device such as /dev/zero, a directory, a socket) and a
// file over MaxFileSize bytes, never blocks on a FIFO and never reads more than MaxFileSize+1
// bytes; it also refuses an empty file. Symbolic links are followed, as Kubernetes mounts
// Secrets through them.
func ReadFile(path string) (string, error) {
	b, err := boundedfile.Read(path, MaxFileSize)
	var fe *FileError
	if errors.As(err, &fe) && !strings.HasPrefix(fe.Reason, "cannot ") {
		return "", &FileError{Path: path, Reason: fe.Reason + ": give a file holding only the secret"}
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", &FileError{Path: path, Reason: "is empty"}
	}
	return s, nil
}
