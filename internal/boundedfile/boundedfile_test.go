package boundedfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/boundedfile"
)

func TestRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	regular := write("file", "content\n")
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(regular, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	sparse := filepath.Join(dir, "sparse") // 1 GiB that costs nothing on disk
	require.NoError(t, os.WriteFile(sparse, nil, 0o600))
	require.NoError(t, os.Truncate(sparse, 1<<30))

	const limit = 16
	tests := []struct {
		name, path string
		want       string // the content, or a part of the error
		ok         bool
	}{
		{"regular file", regular, "content\n", true},
		{"symbolic link to a regular file", link, "content\n", true},
		{"empty", write("empty", ""), "", true},
		{"exactly the limit", write("max", strings.Repeat("k", limit)), strings.Repeat("k", limit), true},
		{"one byte over the limit", write("big", strings.Repeat("k", limit+1)), "larger than 16 bytes", false},
		{"a huge file", sparse, "larger than 16 bytes", false},
		{"missing", filepath.Join(dir, "none"), "cannot open: no such file or directory", false},
		{"FIFO without a writer", fifo, "not a regular file (a FIFO)", false},
		{"directory", dir, "not a regular file (a directory)", false},
		{"/dev/zero", "/dev/zero", "not a regular file (a character device)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			var got []byte
			var err error
			go func() {
				defer close(done)
				got, err = boundedfile.Read(tt.path, limit)
			}()
			select {
			case <-done:
			case <-time.After(time.Minute): // a hang, not a timing: the read must not wait at all
				t.Fatalf("Read(%s) blocks", tt.path)
			}
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, tt.want, string(got))
				return
			}
			require.Nil(t, got)
			var fe *boundedfile.Error
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.path, fe.Path)
			require.Contains(t, err.Error(), tt.want)
			require.True(t, strings.HasPrefix(err.Error(), tt.path+": "), err.Error())
		})
	}
}
