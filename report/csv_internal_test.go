package report

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCSVCellNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                         "",
		"char-1":                   "char-1",
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1+1":                     "'+1+1",
		"-2+3":                     "'-2+3",
		"@SUM(A1)":                 "'@SUM(A1)",
		"\tx":                      "'\tx",
		"-12.5":                    "-12.5",
		"a=b":                      "a=b",
	} {
		require.Equal(t, want, csvCell(in), in)
	}
}
