package secret_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/secret"
)

func TestReadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	regular := write("key", "  sk-live-abc123\n")
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(regular, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	tests := []struct {
		name, path string
		want       string // the content, or a part of the error
		ok         bool
	}{
		{"regular file", regular, "sk-live-abc123", true},
		{"symbolic link to a regular file", link, "sk-live-abc123", true},
		{"exactly the limit", write("max", strings.Repeat("k", secret.MaxFileSize)), strings.Repeat("k", secret.MaxFileSize), true},
		{"one byte over the limit", write("big", strings.Repeat("k", secret.MaxFileSize+1)), "larger than 4096 bytes", false},
		{"empty", write("empty", " \n"), "is empty", false},
		{"missing", filepath.Join(dir, "none"), "cannot open: no such file or directory", false},
		{"FIFO", fifo, "not a regular file (a FIFO)", false},
		{"directory", dir, "not a regular file (a directory)", false},
		{"/dev/zero", "/dev/zero", "not a regular file (a character device)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			var got string
			var err error
			go func() {
				defer close(done)
				got, err = secret.ReadFile(tt.path)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadFile(%s) blocks", tt.path)
			}
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			require.Empty(t, got)
			var fe *secret.FileError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.path, fe.Path)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}
