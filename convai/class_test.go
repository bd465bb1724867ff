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
		{"lower case", 200, `{"status":"successfully deleted"}`, convai.Retryable},
		{"mixed case", 200, `{"status":"Successfully Deleted"}`, convai.Retryable},
		{"mixed case and spaces", 200, `{"status":"  Successfully Deleted\t\n"}`, convai.Retryable},
		{"surrounding spaces", 200, `{"status":" SUCCESSFULLY DELETED "}`, convai.Retryable},
		{"trailing newline", 200, `{"status":"SUCCESSFULLY DELETED\n"}`, convai.Retryable},
		{"deleted 0", 200, `{"status":"SUCCESSFULLY DELETED","deleted":0}`, convai.Retryable},
		{"deleted false", 200, `{"status":"SUCCESSFULLY DELETED","deleted":false}`, convai.Retryable},
		{"deleted null", 200, `{"status":"SUCCESSFULLY DELETED","deleted":null}`, convai.Retryable},
		{"deleted empty list", 200, `{"status":"SUCCESSFULLY DELETED","deleted_ids":[]}`, convai.Retryable},
		{"deleted negative", 200, `{"status":"SUCCESSFULLY DELETED","deletedCount":-1}`, convai.Retryable},
		{"deleted string false", 200, `{"status":"SUCCESSFULLY DELETED","deleted":"false"}`, convai.Retryable},
		{"deleted string 0", 200, `{"status":"SUCCESSFULLY DELETED","Deleted":"0"}`, convai.Retryable},
		{"success false", 200, `{"status":"SUCCESSFULLY DELETED","success":false}`, convai.Retryable},
		{"Success 0", 200, `{"Success":0,"status":"SUCCESSFULLY DELETED"}`, convai.Retryable},
		{"ok false", 200, `{"status":"SUCCESSFULLY DELETED","ok":false}`, convai.Retryable},
		{"removed 0", 200, `{"status":"SUCCESSFULLY DELETED","removed_count":0}`, convai.Retryable},
		{"nested deleted false", 200, `{"status":"SUCCESSFULLY DELETED","sessions":[{"id":"s1","deleted":false}]}`, convai.Retryable},
		{"ERROR", 200, `{"status":"SUCCESSFULLY DELETED","ERROR":"Invalid API key provided."}`, convai.Retryable},
		{"errors list", 200, `{"status":"SUCCESSFULLY DELETED","errors":["s1"]}`, convai.Retryable},
		{"deleted 2", 200, `{"status":"SUCCESSFULLY DELETED","deleted":2}`, convai.Confirmed},
		{"deleted true", 200, `{"status":"SUCCESSFULLY DELETED","deleted":true,"success":true,"ok":true}`, convai.Confirmed},
		{"empty not_deleted", 200, `{"status":"SUCCESSFULLY DELETED","not_deleted":[],"undeleted_ids":null}`, convai.Confirmed},
		{"empty deleted_errors", 200, `{"status":"SUCCESSFULLY DELETED","deleted_errors":[]}`, convai.Confirmed},
		{"deleted ids", 200, `{"status":"SUCCESSFULLY DELETED","deleted_ids":["s1"]}`, convai.Confirmed},
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
		{"duplicate status, success first", 200, `{"status":"SUCCESSFULLY DELETED","status":"QUEUED"}`, convai.Retryable},
		{"duplicate status, success last", 200, `{"status":"QUEUED","status":"SUCCESSFULLY DELETED"}`, convai.Retryable},
		{"duplicate status, both success", 200, `{"status":"SUCCESSFULLY DELETED","status":"SUCCESSFULLY DELETED"}`, convai.Retryable},
		{"status and Status", 200, `{"status":"SUCCESSFULLY DELETED","Status":"FAILED"}`, convai.Retryable},
		{"failed_ids", 200, `{"status":"SUCCESSFULLY DELETED","failed_ids":["s1"]}`, convai.Retryable},
		{"errors", 200, `{"status":"SUCCESSFULLY DELETED","errors":[{"id":"s1"}]}`, convai.Retryable},
		{"failed count", 200, `{"status":"SUCCESSFULLY DELETED","failed":3}`, convai.Retryable},
		{"failed true", 200, `{"status":"SUCCESSFULLY DELETED","failed":true}`, convai.Retryable},
		{"error string", 200, `{"error":"partial","status":"SUCCESSFULLY DELETED"}`, convai.Retryable},
		{"FailedSessionIDs", 200, `{"status":"SUCCESSFULLY DELETED","FailedSessionIDs":"s1"}`, convai.Retryable},
		{"rejected", 200, `{"status":"SUCCESSFULLY DELETED","rejected_ids":["s1"]}`, convai.Retryable},
		{"not_deleted", 200, `{"status":"SUCCESSFULLY DELETED","not_deleted":["s1"]}`, convai.Retryable},
		{"nested failure", 200, `{"status":"SUCCESSFULLY DELETED","result":{"details":[{"failed_ids":["s1"]}]}}`, convai.Retryable},
		{"empty failure fields", 200, `{"status":"SUCCESSFULLY DELETED","failed_ids":[],"errors":null,"failed":0,"error":"","failures":{},"err":false}`, convai.Confirmed},
		{"nested empty failure", 200, `{"status":"SUCCESSFULLY DELETED","result":{"failed_ids":[]}}`, convai.Confirmed},
		{"a failure word in a value only", 200, `{"status":"SUCCESSFULLY DELETED","note":"nothing failed"}`, convai.Confirmed},
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
	if !ok || hasFailure(m) || countStatus(body) != 1 {
		return false
	}
	s, ok := m["status"].(string)
	return ok && s == "SUCCESSFULLY DELETED" && !hasNothingDeleted(m)
}

// hasNothingDeleted reports whether v has, at any depth, a member whose name speaks of deletion
// or success and whose value says none: null, false, a number not above zero, a blank string, "false",
// "0", "no", "none", [] or {}.
func hasNothingDeleted(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			n := fold(k)
			named := !failureName(n) && (n == "ok" || strings.Contains(n, "deleted") ||
				strings.Contains(n, "removed") || strings.Contains(n, "success") || strings.Contains(n, "succeeded"))
			if named && none(x) || hasNothingDeleted(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasNothingDeleted(x) {
				return true
			}
		}
	}
	return false
}

func none(v any) bool {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return err != nil || f <= 0
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "", "false", "0", "no", "none":
			return true
		}
		return false
	}
	return empty(v)
}

// hasFailure reports whether v has, at any depth, a member whose name mentions a failure and
// whose value is not empty.
func hasFailure(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if failureName(fold(k)) && !empty(x) || hasFailure(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasFailure(x) {
				return true
			}
		}
	}
	return false
}

// fold lowers a member name and drops "_", "-" and spaces.
func fold(name string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(name))
}

// failureName reports whether a folded member name mentions a failure.
func failureName(n string) bool {
	named := n == "err" || n == "errs"
	for _, w := range []string{"fail", "error", "reject", "undeleted", "notdeleted"} {
		named = named || strings.Contains(n, w)
	}
	return named
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case json.Number:
		f, err := v.Float64()
		return err == nil && f == 0
	case string:
		return strings.TrimSpace(v) == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// countStatus counts the top-level members of the object body whose name folds to "status",
// duplicates included.
func countStatus(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return 0
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0
		}
		if name, _ := tok.(string); strings.EqualFold(name, "status") {
			n++
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return 0
		}
	}
	return n
}

func FuzzClassify(f *testing.F) {
	f.Add(200, []byte(`{"status": "SUCCESSFULLY DELETED"}`))
	f.Add(200, []byte(`{"status":" successfully deleted "}`))
	f.Add(200, []byte(`{"status":"SUCCESSFULLY DELETED","deleted":0}`))
	f.Add(200, []byte(`{"status":"SUCCESSFULLY DELETED","result":{"success":false}}`))
	f.Add(200, []byte(`{"status":"QUEUED"}`))
	f.Add(200, []byte(`{"status":1}`))
	f.Add(200, []byte(`[]`))
	f.Add(200, []byte(`{"status":"SUCCESSFULLY DELETED","failed_ids":["a"]}`))
	f.Add(200, []byte(`{"status":"SUCCESSFULLY DELETED","status":"SUCCESSFULLY DELETED"}`))
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
