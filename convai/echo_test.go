package convai_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
)

// keyForms are the transformations of a secret a hostile or careless endpoint may echo.
func keyForms(k string) map[string]string {
	return map[string]string{
		"exact":        k,
		"lower case":   strings.ToLower(k),
		"upper case":   strings.ToUpper(k),
		"query escape": url.QueryEscape(k),
		"path escape":  url.PathEscape(k),
		"base64":       base64.StdEncoding.EncodeToString([]byte(k)),
		"base64 url":   base64.RawURLEncoding.EncodeToString([]byte(k)),
		"a piece":      k[3:13],
		"JSON escaped": strings.Trim(mustJSON(k), `"`),
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// requireNoForm fails if any 8 bytes in a row of any form of secret show in s, in any case.
func requireNoForm(t *testing.T, s, secret string) {
	t.Helper()
	low := strings.ToLower(s)
	for name, f := range keyForms(secret) {
		f = strings.ToLower(f)
		for i := 0; i+8 <= len(f); i++ {
			require.NotContains(t, low, f[i:i+8], "%s of the secret shows in %q", name, s)
		}
	}
}

// TestDeleteEchoedSecretTransformed: an endpoint echoes the key and the database password,
// transformed, in every kind of answer whose text is kept.
func TestDeleteEchoedSecretTransformed(t *testing.T) {
	t.Parallel()
	const key = "ck-live-Q7w8E9r0T1y2U3i4"
	const password = "db-Pa55word-987654"
	for form, k := range keyForms(key) {
		for _, code := range []int{200, 400, 401, 404, 500} {
			for _, shape := range []string{"json", "text"} {
				t.Run(form+"/"+http.StatusText(code)+"/"+shape, func(t *testing.T) {
					t.Parallel()
					text := "key " + k + " and password " + strings.ToUpper(password) + " refused"
					body := text
					if shape == "json" {
						body = `{"ERROR":` + mustJSON(text) + `}`
					}
					srv := httptest.NewServer(reply(code, body))
					t.Cleanup(srv.Close)
					c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: key, Secrets: []string{password},
						Now: func() time.Time { return now }})
					require.NoError(t, err)
					t.Cleanup(c.CloseIdleConnections)
					res := c.Delete(context.Background(), "c", []string{"s"})
					requireClean(t, res)
					require.NotEqual(t, convai.Confirmed, res.Class)
					require.Contains(t, res.Detail, "refused", "the rest of the text is kept")
					require.Contains(t, res.Detail, "[redacted]")
					require.LessOrEqual(t, len(res.Detail), convai.MaxDetail)
					for _, s := range []string{res.Detail, res.Err.Error()} {
						requireNoForm(t, s, key)
						requireNoForm(t, s, password)
					}
				})
			}
		}
	}
}
