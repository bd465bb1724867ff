package convai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
)

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c, err := convai.New(convai.Config{APIKey: apiKey})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	require.Equal(t, "convai.Client{endpoint: https://api.convai.com/character/chatHistory/delete, user_agent: convai-retention}", c.String())
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     convai.Config
		field   string
		message string // the error contains it
	}{
		{"no key", convai.Config{}, "APIKey", "required"},
		{"key with a space", convai.Config{APIKey: "ab cd"}, "APIKey", "printable ASCII"},
		{"key with a newline", convai.Config{APIKey: apiKey + "\n"}, "APIKey", "trailing newline"},
		{"key with non-ASCII", convai.Config{APIKey: "clé"}, "APIKey", "printable ASCII"},
		{"ftp", convai.Config{APIKey: apiKey, BaseURL: "ftp://api.convai.com"}, "BaseURL", `"ftp://api.convai.com": must start with http:// or https://`},
		{"no scheme", convai.Config{APIKey: apiKey, BaseURL: "api.convai.com"}, "BaseURL", "must start with http"},
		{"no host", convai.Config{APIKey: apiKey, BaseURL: "https://"}, "BaseURL", "must have a host"},
		{"opaque", convai.Config{APIKey: apiKey, BaseURL: "https:api.convai.com"}, "BaseURL", "must have a host"},
		{"user info", convai.Config{APIKey: apiKey, BaseURL: "https://me:hunter2@api.convai.com"}, "BaseURL", "user info"},
		{"key as user name", convai.Config{APIKey: apiKey, BaseURL: "https://" + apiKey + "@api.convai.com"}, "BaseURL", "https://xxxxx@api.convai.com"},
		{"key in the path of a bad URL", convai.Config{APIKey: apiKey, BaseURL: "ftp://api.convai.com/" + apiKey}, "BaseURL", "ftp://api.convai.com/[redacted]"},
		{"query", convai.Config{APIKey: apiKey, BaseURL: "https://api.convai.com/?key=hunter2"}, "BaseURL", "query or fragment"},
		{"fragment", convai.Config{APIKey: apiKey, BaseURL: "https://api.convai.com/#x"}, "BaseURL", "query or fragment"},
		{"unparseable", convai.Config{APIKey: apiKey, BaseURL: "http://[::1"}, "BaseURL", "not a URL"},
		{"user agent with a newline", convai.Config{APIKey: apiKey, UserAgent: "a\nb"}, "UserAgent", "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := convai.New(tt.cfg)
			require.Nil(t, c)
			var ce *convai.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.field, ce.Field)
			require.Contains(t, err.Error(), tt.message)
			require.NotContains(t, err.Error(), "hunter2")
			if k := strings.TrimSpace(tt.cfg.APIKey); k != "" {
				require.NotContains(t, err.Error(), k)
			}
		})
	}
}

func TestNewAcceptsPrefixAndPlainHTTP(t *testing.T) {
	t.Parallel()
	c, err := convai.New(convai.Config{APIKey: apiKey, BaseURL: "HTTP://127.0.0.1:8089/base/", UserAgent: "job/1.0 (x)"})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	require.Contains(t, c.String(), "http://127.0.0.1:8089/base/character/chatHistory/delete")
	require.Contains(t, c.String(), "job/1.0 (x)")
}

func TestKeyNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := convai.Config{BaseURL: "https://api.convai.com", APIKey: apiKey, HTTPClient: &http.Client{}, UserAgent: "ua"}
	c, err := convai.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)

	type holder struct {
		Cfg convai.Config
		C   *convai.Client
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T"} {
		out = append(out, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, c),
			fmt.Sprintf(verb, *c), fmt.Sprintf(verb, holder{cfg, c}), fmt.Sprintf(verb, []any{cfg, c}))
	}
	out = append(out, fmt.Sprint(cfg, c), fmt.Sprintln(cfg, *c), cfg.String(), cfg.GoString(), c.String(), c.GoString())
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	out = append(out, string(js))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "cfg", cfg, "client", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "cfg", cfg, "client", c, "ptr", &cfg)
	out = append(out, buf.String())

	all := strings.Join(out, "\n")
	require.NotContains(t, all, apiKey)
	require.NotContains(t, all, apiKey[:8])
	require.Contains(t, fmt.Sprintf("%+v", cfg), "APIKey:[redacted]")
	require.Contains(t, fmt.Sprintf("%#v", cfg), `APIKey:"[redacted]"`)
	require.Contains(t, fmt.Sprintf("%v", convai.Config{}), "APIKey: ", "an unset key shows as empty")
	require.Contains(t, buf.String(), `"api_key":"[redacted]"`)
}

// TestKeyEchoedByServerIsRedacted covers a server that echoes the request, headers included,
// in its answer.
func TestKeyEchoedByServerIsRedacted(t *testing.T) {
	t.Parallel()
	echo := func(code int, wrapJSON bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			var b strings.Builder
			_ = r.Header.Write(&b)
			text := "you sent key " + r.Header.Get("CONVAI-API-KEY") + " in: " + b.String()
			if wrapJSON {
				data, _ := json.Marshal(map[string]string{"ERROR": text})
				text = string(data)
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, text)
		}
	}
	for _, tt := range []struct {
		code     int
		wrapJSON bool
	}{{400, false}, {400, true}, {401, true}, {500, false}, {200, false}, {200, true}, {302, false}} {
		c, _ := setup(t, echo(tt.code, tt.wrapJSON))
		res := c.Delete(context.Background(), "c", []string{"s"})
		requireClean(t, res)
		require.NotContains(t, res.Detail, "you sent key", "no text of the body is kept")
		require.NotContains(t, fmt.Sprintf("%v %+v %#v", res, res.Err, res), apiKey)
	}

	// A key echoed just where the excerpt is cut leaves no part of itself behind.
	for pad := 780; pad < 810; pad++ {
		c, _ := setup(t, reply(400, strings.Repeat(" ", pad)+apiKey+" tail"))
		res := c.Delete(context.Background(), "c", []string{"s"})
		requireClean(t, res)
		require.NotContains(t, res.Detail, apiKey[:6], "pad %d: %q", pad, res.Detail)
	}
}

func TestEndpointPaths(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]string{
		"https://api.convai.com":  "https://api.convai.com/character/chatHistory/delete",
		"https://api.convai.com/": "https://api.convai.com/character/chatHistory/delete",
		"https://h/v1":            "https://h/v1/character/chatHistory/delete",
		"https://h/v1//":          "https://h/v1/character/chatHistory/delete",
		"https://h/a%2Fb/":        "https://h/a%2Fb/character/chatHistory/delete",
		"http://[::1]:8089/x y":   "http://[::1]:8089/x%20y/character/chatHistory/delete",
	} {
		c, err := convai.New(convai.Config{BaseURL: base, APIKey: apiKey})
		require.NoError(t, err, base)
		require.Contains(t, c.String(), "endpoint: "+want+",", base)
	}
}
