package convai_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
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
// transformed, in every kind of answer; no text of the body, and so no form of a secret, is kept.
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
					require.NotContains(t, res.Detail, "refused", "no text of the body is kept")
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

// encodedKeys are the encodings of a key that an endpoint echoing it may use, whole.
func encodedKeys(k string) map[string]string {
	var pct strings.Builder
	for i := 0; i < len(k); i++ {
		fmt.Fprintf(&pct, "%%%02X", k[i])
	}
	return map[string]string{
		"plain":                   k,
		"base64 of apikey:KEY":    base64.StdEncoding.EncodeToString([]byte("apikey:" + k)),
		"base64url of apikey:KEY": base64.RawURLEncoding.EncodeToString([]byte("apikey:" + k)),
		"base64 of KEY":           base64.StdEncoding.EncodeToString([]byte(k)),
		"hex":                     hex.EncodeToString([]byte(k)),
		"upper hex":               strings.ToUpper(hex.EncodeToString([]byte(k))),
		"fully %-encoded":         pct.String(),
		"lower %-encoded":         strings.ToLower(pct.String()),
	}
}

// TestDeleteDetailKeepsNoBody: an endpoint echoes the key it was sent, in every encoding, in
// every kind of answer and every place of a body. Detail and Err say only what the client
// classified (the status, and for a 2xx why it is not a confirmation) plus a message from the
// list of known texts, so neither the key in any encoding nor any other text of the body shows.
func TestDeleteDetailKeepsNoBody(t *testing.T) {
	t.Parallel()
	const key = "ck-live-Z1x2C3v4B5n6M7q8"
	bodies := map[string]func(enc string) string{
		"text":          func(enc string) string { return "refused " + enc },
		"ERROR":         func(enc string) string { return `{"ERROR":"refused ` + enc + `"}` },
		"message":       func(enc string) string { return `{"message":"` + enc + `"}` },
		"bare":          func(enc string) string { return `{"error":"` + enc + `"}` },
		"status":        func(enc string) string { return `{"status":"` + enc + `"}` },
		"failure value": func(enc string) string { return `{"status":"SUCCESSFULLY DELETED","errors":["` + enc + `"]}` },
		"member name":   func(enc string) string { return `{"status":"SUCCESSFULLY DELETED","error_` + enc + `":1}` },
		"deleted name":  func(enc string) string { return `{"status":"SUCCESSFULLY DELETED","deleted_` + enc + `":0}` },
		"JSON string":   func(enc string) string { return `"` + enc + `"` },
	}
	for form := range encodedKeys(key) {
		for shape, body := range bodies {
			for _, code := range []int{200, 400, 401, 404, 429, 500, 302, 600} {
				t.Run(form+"/"+shape+"/"+strconv.Itoa(code), func(t *testing.T) {
					t.Parallel()
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						_, _ = io.Copy(io.Discard, r.Body)
						sent := r.Header.Get("CONVAI-API-KEY")
						w.WriteHeader(code)
						_, _ = io.WriteString(w, body(encodedKeys(sent)[form]))
					}))
					t.Cleanup(srv.Close)
					c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: key})
					require.NoError(t, err)
					t.Cleanup(c.CloseIdleConnections)
					res := c.Delete(context.Background(), "c", []string{"s"})
					requireClean(t, res)
					require.NotEqual(t, convai.Confirmed, res.Class)
					for _, s := range []string{res.Detail, res.Err.Error()} {
						for name, e := range encodedKeys(key) {
							require.NotContains(t, strings.ToLower(s), strings.ToLower(e), "%s of the key in %q", name, s)
						}
						requireNoForm(t, s, key)
						require.NotContains(t, s, "refused", "body text kept in %q", s)
						require.NotContains(t, s, "[redacted]", "the body was kept and redacted: %q", s)
					}
				})
			}
		}
	}
}

// TestListAndDetailsQuoteNoBody: a 2xx list or details answer that is not the documented shape
// and echoes the key, in any encoding, is described, not quoted.
func TestListAndDetailsQuoteNoBody(t *testing.T) {
	t.Parallel()
	const key = "ck-live-Z1x2C3v4B5n6M7q8"
	bodies := map[string]func(enc string) string{
		"JSON string":   func(enc string) string { return `"` + enc + `"` },
		"text":          func(enc string) string { return enc },
		"object":        func(enc string) string { return `{"` + enc + `":1}` },
		"bad element":   func(enc string) string { return `[{"sessionID":"s1"},{"sessionID":` + enc + `}]` },
		"after the end": func(enc string) string { return `[]` + enc },
	}
	for form := range encodedKeys(key) {
		for shape, body := range bodies {
			t.Run(form+"/"+shape, func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					_, _ = io.WriteString(w, body(encodedKeys(r.Header.Get("CONVAI-API-KEY"))[form]))
				}))
				t.Cleanup(srv.Close)
				c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: key})
				require.NoError(t, err)
				t.Cleanup(c.CloseIdleConnections)
				list := c.List(context.Background(), "c", func(convai.ListedSession) error { return nil })
				require.NotEqual(t, convai.Confirmed, list.Class, "no shape here is a session list")
				_, details := c.Details(context.Background(), "c", "s")
				for _, res := range []convai.Result{list, details} {
					if res.Class == convai.Confirmed {
						continue // a details answer may be any JSON
					}
					require.ErrorIs(t, res.Err, convai.ErrMalformedAnswer)
					for _, s := range []string{res.Detail, res.Err.Error()} {
						for name, e := range encodedKeys(key) {
							require.NotContains(t, strings.ToLower(s), strings.ToLower(e), "%s of the key in %q", name, s)
						}
						requireNoForm(t, s, key)
					}
				}
			})
		}
	}
}
