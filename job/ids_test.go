package job_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// oddID is one session of the source, and whether the job may send it.
type oddID struct {
	char, sess string
	send       bool
}

// oddIDs are IDs that are valid but easy to mangle on the way from PostgreSQL to the API: at the
// length limit, SQL and array syntax, quoting, emoji, right-to-left and invisible characters,
// IDs that differ only in case, spaces or Unicode normalisation, and one session ID shared by
// several characters, one of which holds it.
func oddIDs() []oddID {
	at256 := strings.Repeat("会", 85) + "x" // 255 + 1 bytes
	var ids []oddID
	add := func(char string, send bool, sessions ...string) {
		for _, s := range sessions {
			ids = append(ids, oddID{char, s, send})
		}
	}
	add("bot", true,
		at256, strings.Repeat("x", 256), `it's`, `say "hi"`, `back\slash`, `\\`, `\x41`, `'; DROP TABLE retention.deletions; --`,
		`%`, `_`, `a%b_c`, `NULL`, `null`, `{}`, `{a,b}`, `,`, `"`, `(1,2)`, `$1`, `E'\n'`, `\N`,
		"🧑‍🤝‍🧑👍🏽", "🏳️‍🌈", "שלום\u200fעולם", "مرحبا بالعالم", "\u202eevil\u202c", "x\u200by", "\ufeffbom",
		"\u00a0nbsp", "e\u0301", "é", "ﬁ", "S1", "s1", "s1 ", " s1", "s1\u3000",
		"shared", "shared-held")
	add("bot", false, at256+"y", strings.Repeat("x", 257), "nl\ninside", "cr\rinside", "tab\tinside", "  ", "\t")
	add("Bot", true, "shared", "shared-held")
	add("bot ", true, "shared")
	add(strings.Repeat("c", 256), true, "shared")
	add(strings.Repeat("c", 257), false, "shared")
	add("персонаж-🤖", true, "shared", "会话")
	add("held-char", false, "shared") // the whole character is held
	return ids
}

// TestOddIDsGoThroughExactly: every valid ID reaches the API byte for byte, once, under its own
// character, and is recorded as it was read; the others are skipped as malformed; the holds
// protect exactly the (character, session) they name. Every row has the same last activity and
// the pages are tiny, so the keyset walk crosses page boundaries between such IDs.
func TestOddIDsGoThroughExactly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, source string
		page         int
	}{
		{"retention.sessions", "retention.sessions", 1},
		{"retention.sessions", "retention.sessions", 7},
		{"view", "app.retention_source", 1},
		{"view", "app.retention_source", 5},
	} {
		t.Run(fmt.Sprintf("%s/page=%d", tt.name, tt.page), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{source: appSchema})
			b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
			b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES
				('held-char', NULL, 'legal hold'), ('bot', 'shared-held', 'ticket')`)
			var chars, sessions, want []string
			for _, id := range oddIDs() {
				chars, sessions = append(chars, id.char), append(sessions, id.sess)
				if id.send && !(id.char == "bot" && id.sess == "shared-held") {
					want = append(want, id.char+"/"+id.sess)
				}
			}
			sort.Strings(want)
			table := "retention.sessions (character_id, session_id, last_active_at)"
			if tt.source != "retention.sessions" {
				table = "app.chat_sessions (bot, convai_sid, last_msg_at)"
			}
			// One timestamp for all: the order within it is the IDs' own.
			b.exec(t, `INSERT INTO `+table+`
				SELECT c, s, date_trunc('second', now()) - interval '40 days' FROM unnest($1::text[], $2::text[]) AS u(c, s)`,
				chars, sessions)

			cfg := fastConfig()
			cfg.PageSize, cfg.ChunkSize = tt.page, 3
			sum, err := b.runWith(t, context.Background(), b.storeFor(t, tt.source), cfg)
			require.NoError(t, err)
			require.Equal(t, job.StatusSucceeded, sum.Status)

			require.Equal(t, want, b.requested(), "every valid ID sent once, byte for byte, under its character")
			require.Equal(t, want, b.fakeDeleted())
			require.Equal(t, want, b.recordedDeleted(t))
			for _, r := range b.fake.Requests() {
				for _, id := range r.SessionIDs {
					require.True(t, containsID(oddIDs(), r.CharID, id), "sent %q/%q, which is not in the source", r.CharID, id)
				}
			}
			require.EqualValues(t, 8, sum.SkippedByReason["malformed"], "over-long IDs, control characters, blank IDs")
			require.EqualValues(t, 2, sum.SkippedByReason["held"], "held-char/shared and bot/shared-held; Bot/shared-held is another session")
		})
	}
}

func containsID(ids []oddID, char, sess string) bool {
	for _, id := range ids {
		if id.char == char && id.sess == sess {
			return true
		}
	}
	return false
}
