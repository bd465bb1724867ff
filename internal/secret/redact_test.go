package secret_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/secret"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	const key = "sk-live-Ab12Cd34Ef56/+?&="
	r := secret.NewRedactor(key, "pw-short", "abc", "")
	tests := []struct {
		name, in, want string
	}{
		{"exact", "key " + key + " refused", "key [redacted] refused"},
		{"lower case", "key " + strings.ToLower(key) + ".", "key [redacted]."},
		{"upper case", strings.ToUpper(key), "[redacted]"},
		{"query escaped", "k=" + url.QueryEscape(key), "k=[redacted]"},
		{"path escaped", "/x/" + url.PathEscape(key) + "/y", "/x/[redacted]/y"},
		{"base64", "Basic " + base64.StdEncoding.EncodeToString([]byte(key)), "Basic [redacted]"},
		{"base64 url, raw", base64.RawURLEncoding.EncodeToString([]byte(key)) + "!", "[redacted]!"},
		{"base64 after a prefix", "Basic " + base64.StdEncoding.EncodeToString([]byte("apikey:"+key)), "Basic YXBpa2V5OnNr[redacted]Jj0="}, // 2 bytes of the key at each end, under Window
		{"base64 after a 2-byte prefix", base64.RawURLEncoding.EncodeToString([]byte("k=" + key)), "az1z[redacted]"},
		{"hex", "k=" + hex.EncodeToString([]byte(key)), "k=[redacted]"},
		{"upper hex", strings.ToUpper(hex.EncodeToString([]byte(key))) + ".", "[redacted]."},
		{"every byte %-encoded", "k=" + percentAll(key), "k=[redacted]"},
		{"an 8-byte piece", "got Ab12Cd34 only", "got [redacted] only"},
		{"an 8-byte piece in another case", "got aB12cD34 only", "got [redacted] only"},
		{"a 7-byte piece stays", "got Ab12Cd3 only", "got Ab12Cd3 only"},
		{"two pieces", "Ab12Cd34 and Ef56/+?&", "[redacted] and [redacted]"},
		{"the key twice in a row", key + key, "[redacted]"},
		{"a short secret whole", "password pw-short.", "password [redacted]."},
		{"a secret under MinLen is not looked for", "abc", "abc"},
		{"nothing to hide", "HTTP 400: session not found", "HTTP 400: session not found"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, r.Redact(tt.in))
			require.Equal(t, tt.in != tt.want, r.Contains(tt.in))
		})
	}
	var none *secret.Redactor
	require.Equal(t, key, none.Redact(key))
	require.Equal(t, key, secret.NewRedactor().Redact(key))
}

// percentAll %-encodes every byte of s.
func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestRedactLeavesNoPiece redacts every substring of the key, cut anywhere, inside text; no
// Window bytes in a row of the key may remain.
func TestRedactLeavesNoPiece(t *testing.T) {
	t.Parallel()
	const key = "sk-test-SECRET-123456-abcdef"
	r := secret.NewRedactor(key)
	for i := 0; i < len(key); i++ {
		for j := i + secret.Window; j <= len(key); j++ {
			out := strings.ToLower(r.Redact("x " + key[i:j] + " y"))
			for k := 0; k+secret.Window <= len(key); k++ {
				require.NotContains(t, out, strings.ToLower(key[k:k+secret.Window]), "piece %q", key[i:j])
			}
		}
	}
}

func ExampleRedactor() {
	r := secret.NewRedactor("sk-live-0123456789")
	fmt.Println(r.Redact("rejected key SK-LIVE-0123456789"))
	fmt.Println(r.Redact("key ends in 23456789"))
	// Output:
	// rejected key [redacted]
	// key ends in [redacted]
}

func TestRedactorPrintsNoSecret(t *testing.T) {
	t.Parallel()
	const key = "sk-live-0123456789"
	r := secret.NewRedactor(key)
	holder := struct{ r *secret.Redactor }{r}
	for _, out := range []string{fmt.Sprint(r), fmt.Sprintf("%+v %#v %v %+v %#v", *r, r, holder, holder, holder)} {
		for i := 0; i+6 <= len(key); i++ {
			require.NotContains(t, strings.ToLower(out), key[i:i+6])
		}
	}
}

// TestRedactValuesWhole: values such as passwords are found whole, in every form, but a piece of
// one is left alone: it may be an ordinary word.
func TestRedactValuesWhole(t *testing.T) {
	t.Parallel()
	const pw = "retention-Passw0rd"
	r := secret.New([]string{"sk-live-0123456789"}, []string{pw})
	for _, tt := range []struct{ in, want string }{
		{"password " + pw, "password [redacted]"},
		{strings.ToUpper(pw) + "!", "[redacted]!"},
		{"p=" + url.QueryEscape(pw), "p=[redacted]"},
		{base64.StdEncoding.EncodeToString([]byte(pw)), "[redacted]"},
		{hex.EncodeToString([]byte(pw)), "[redacted]"},
		{percentAll(pw), "[redacted]"},
		{"source retention.sessions", "source retention.sessions"},
		{"key 23456789", "key [redacted]"},
	} {
		require.Equal(t, tt.want, r.Redact(tt.in), tt.in)
	}
}
