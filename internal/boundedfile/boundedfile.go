package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Error is returned by Read when a file cannot be used. Its message names the file and the
// reason, never the file's content.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// Read returns the content of the regular file path, of at most limit bytes. It refuses, with an
// *Error, anything but a regular file (a FIFO, a device such as /dev/zero, a directory, a socket)
// and a file over limit bytes. It never blocks on opening a FIFO (O_NONBLOCK), looks at the file
// it opened (fstat, so the file cannot be swapped between the check and the read) and never
// reads more than limit+1 bytes. Symbolic links are followed, as Kubernetes mounts Secrets and
// ConfigMaps through them.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, &Error{Path: path, Reason: "cannot open: " + reason(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Path: path, Reason: "cannot stat: " + reason(err)}
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{Path: path, Reason: fmt.Sprintf("not a regular file (%s)", kind(st.Mode()))}
	}
	tooBig := &Error{Path: path, Reason: fmt.Sprintf("larger than %d bytes", limit)}
	if st.Size() > limit {
		return nil, tooBig
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &Error{Path: path, Reason: "cannot read: " + reason(err)}
	}
	if int64(len(b)) > limit { // grown since the stat
		return nil, tooBig
	}
	return b, nil
}

// reason is the reason of a file error without the path, which Error adds itself.
func reason(err error) string {
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
