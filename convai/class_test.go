package convai_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	const ok = `{"status": "SUCCESSFULLY DELETED"}`
	tests := []struct {
		name string
		code int
		body string
		want convai.Class
	}{
		{"documented success", 200, ok, convai.Confirmed},
		{"lower case", 200, `{"status":"successfully deleted"}`, convai.Confirmed},
		{"mixed case and spaces", 200, `{"status":"  Successfully Deleted\t\n"}`, convai.Confirmed},
		{"other members", 200, `{"id":1,"status":"SUCCESSFULLY DELETED","x":[1e400]}`, convai.Confirmed},
		{"white space around the object", 200, " \n" + ok + "\n", convai.Confirmed},
		{"any 2xx", 202, ok, convai.Confirmed},
		{"empty 200", 200, ``, convai.Retryable},
		{"204", 204, ``, convai.Retryable},
		{"html", 200, `<html>SUCCESSFULLY DELETED</html>`, convai.Retryable},
		{"queued", 200, `{"status":"QUEUED"}`, convai.Retryable},
		{"number status", 200, `{"status": 1}`, convai.Retryable},
		{"null status", 200, `{"status": null}`, convai.Retryable},
		{"object status", 200, `{"status": {"status":"SUCCESSFULLY DELETED"}}`, convai.Retryable},
		{"truncated", 200, `{"status": "SUCCESSFULLY DELETED"`, convai.Retryable},
		{"trailing data", 200, ok + `x`, convai.Retryable},
		{"two objects", 200, ok + ok, convai.Retryable},
		{"array", 200, `["SUCCESSFULLY DELETED"]`, convai.Retryable},
		{"bare string", 200, `"SUCCESSFULLY DELETED"`, convai.Retryable},
		{"null", 200, `null`, convai.Retryable},
		{"member name is exact", 200, `{"Status":"SUCCESSFULLY DELETED"}`, convai.Retryable},
		{"last duplicate wins", 200, `{"status":"SUCCESSFULLY DELETED","status":"QUEUED"}`, convai.Retryable},
		{"extra words", 200, `{"status":"SUCCESSFULLY DELETED 0 SESSIONS"}`, convai.Retryable},
		{"inner space differs", 200, `{"status":"SUCCESSFULLY  DELETED"}`, convai.Retryable},
		{"unicode look-alike (long s)", 200, `{"status":"ſuccessfully deleted"}`, convai.Retryable},
		{"non-breaking space around", 200, "{\"status\":\"\u00a0SUCCESSFULLY DELETED\"}", convai.Retryable},
		{"confirmation body on 500", 500, ok, convai.Retryable},
		{"408", 408, ``, convai.Retryable},
		{"429", 429, ``, convai.Retryable},
		{"500", 500, ``, convai.Retryable},
		{"502", 502, ``, convai.Retryable},
		{"503", 503, ``, convai.Retryable},
		{"599", 599, ``, convai.Retryable},
		{"401", 401, `{"ERROR": "Invalid API key provided."}`, convai.AuthRejected},
		{"403", 403, ``, convai.AuthRejected},
		{"confirmation body on 401", 401, ok, convai.AuthRejected},
		{"400", 400, `{"ERROR":"bad"}`, convai.Permanent},
		{"404", 404, ``, convai.Permanent},
		{"409", 409, ``, convai.Permanent},
		{"413", 413, ``, convai.Permanent},
		{"422", 422, ``, convai.Permanent},
		{"499", 499, ``, convai.Permanent},
		{"100", 100, ``, convai.Retryable},
		{"301", 301, ok, convai.Retryable},
		{"304", 304, ``, convai.Retryable},
		{"307", 307, ``, convai.Retryable},
		{"600", 600, ok, convai.Retryable},
		{"0", 0, ok, convai.Retryable},
		{"negative", -200, ok, convai.Retryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, convai.Classify(tt.code, []byte(tt.body)))
		})
	}
}

func TestClassString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "confirmed", convai.Confirmed.String())
	require.Equal(t, "retryable", convai.Retryable.String())
	require.Equal(t, "auth_rejected", convai.AuthRejected.String())
	require.Equal(t, "permanent", convai.Permanent.String())
	require.Equal(t, "Class(0)", convai.Class(0).String())
}

// wantConfirmed is the confirmation rule written independently of the package.
func wantConfirmed(code int, body []byte) bool {
	if code < 200 || code > 299 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	if _, err := dec.Token(); err == nil { // more data after the value
		return false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	s, ok := m["status"].(string)
	return ok && strings.ToLower(strings.Trim(s, " \t\r\n")) == "successfully deleted"
}

func FuzzClassify(f *testing.F) {
	f.Add(200, []byte(`{"status": "SUCCESSFULLY DELETED"}`))
	f.Add(200, []byte(`{"status":" successfully deleted "}`))
	f.Add(200, []byte(`{"status":"QUEUED"}`))
	f.Add(200, []byte(`{"status":1}`))
	f.Add(200, []byte(`[]`))
	f.Add(200, []byte(``))
	f.Add(204, []byte(`{"status":"SUCCESSFULLY DELETED"}`))
	f.Add(401, []byte(`{"ERROR": "Invalid API key provided."}`))
	f.Add(302, []byte(`{"status":"SUCCESSFULLY DELETED"}`))
	f.Add(503, []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		got := convai.Classify(code, body)
		require.Contains(t, []convai.Class{convai.Confirmed, convai.Retryable, convai.AuthRejected, convai.Permanent}, got)
		require.Equal(t, wantConfirmed(code, body), got == convai.Confirmed, "status %d body %q", code, body)
		if code == 401 || code == 403 {
			require.Equal(t, convai.AuthRejected, got)
		}
	})
}
