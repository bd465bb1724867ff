package secret

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// MaxFileSize is the most bytes ReadFile reads from a secret file. API keys, passwords and
// connection strings are far shorter; a bigger file is not a secret file.
const MaxFileSize = 4 << 10

// FileError is returned by ReadFile when a secret file cannot be used. Its message names the
// file and the reason, never the file's content.
type FileError struct {
	Path   string
	Reason string
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Reason) }

// ReadFile returns the content of the secret file path with surrounding white space (such as a
// final newline) removed. It refuses, with a *FileError, anything but a regular file (a FIFO, a
// device such as /dev/zero, a directory, a socket), a file over MaxFileSize bytes and an empty
// one. It never blocks on a FIFO and never reads more than MaxFileSize+1 bytes. Symbolic links
// are followed, as Kubernetes mounts Secrets through them.
func ReadFile(path string) (string, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", &FileError{Path: path, Reason: "cannot open: " + openReason(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", &FileError{Path: path, Reason: "cannot stat: " + openReason(err)}
	}
	if !st.Mode().IsRegular() {
		return "", &FileError{Path: path, Reason: fmt.Sprintf("not a regular file (%s): give a file holding only the secret", kind(st.Mode()))}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return "", &FileError{Path: path, Reason: "cannot read: " + openReason(err)}
	}
	if len(b) > MaxFileSize {
		return "", &FileError{Path: path, Reason: fmt.Sprintf("larger than %d bytes: give a file holding only the secret", MaxFileSize)}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", &FileError{Path: path, Reason: "is empty"}
	}
	return s, nil
}

// openReason is the reason of a file error without the path, which FileError adds itself.
func openReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// kind names a file type that is not a regular file.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "type " + m.Type().String()
}
