package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/source"
)

const eraseUsage = `usage: retention erase --character C [--session S] --reason R [--due 72h] [flags]
       retention erase --end-user U [--character C] [--end-user-record] --reason R [--due 72h] [flags]

Files an erasure request: a person asked that a session (or, without --session, every session
of the character, in the source and at Convai) be deleted, whatever its age and whatever the
policies say.
Every real run sends the sessions of open requests first, and never caps them (--abort-above);
an active hold still wins, and the request then stays open, blocked by it. A session the source
does not know is sent all the same. The request is complete when every one of its sessions is
confirmed deleted; retention report shows it open, blocked, overdue or completed, with its lag.
Requests are never edited or removed: to keep a requested session, place a hold.

With --end-user, the request is for one end user of your app (the end_user_id your app passes to
Convai, kept in retention.sessions.end_user_id when the source has that column): every run
deletes every session of that end user (with every character they talked to, or with --character
only), never another end user's, then, for each of those characters, asks Convai to delete the
end user's long-term memory (/memory/delete-all) and lists it (/memory/list) until it is empty,
within a bound; what is not yet empty is asked again by the next run. With --end-user-record it
then deletes the end user's record at Convai (/user/end-users/delete). The request is complete
only when every session is deleted and every memory is confirmed gone. A hold on the character or
on one of the end user's sessions of it blocks that character, memory included. Each memory
erasure is recorded (retention.memory_erasures) and shown by retention report --end-user U.
Nothing calls the memory endpoints unless such a request is open (or a policy sets memory_max_age).
Exit 0 when filed, 2 for a bad flag or a request the schema refuses, 5 when the database fails.

`

func eraseHelp(w io.Writer) {
	fmt.Fprint(w, eraseUsage)
	usageOf(w, eraseFlags)
}

// maxRequestedBy is the longest --requested-by, in characters: the schema's
// erasure_requester_named check.
const maxRequestedBy = 200

// eraseOptions is the parsed command line of "retention erase".
type eraseOptions struct {
	character, session, reason string
	endUser                    string
	endUserRecord              bool
	due                        string
	requestedBy, requestedAt   string
	output, source             string
}

func eraseFlags(o *eraseOptions) *flagSet {
	fs := newFlagSet("erase")
	fs.StringVar(&o.character, "character", "", "the character whose session(s) to erase (required without --end-user; with it, the one character whose sessions and memory of the end user to erase)")
	fs.StringVar(&o.endUser, "end-user", "", "the end user whose every session and long-term memory to erase (default: none; see above)")
	fs.BoolVar(&o.endUserRecord, "end-user-record", false, "with --end-user: then delete the end user's record at Convai too, with their memories with every character of the account")
	fs.StringVar(&o.session, "session", "", "the one session to erase (default: every session of the character, in the source and at Convai)")
	fs.StringVar(&o.reason, "reason", "", "why: the request's reference, e.g. a ticket (required; at most 1000 characters; do not put personal data here)")
	fs.StringVar(&o.due, "due", "", "the deadline after the request, as 72h or 30d (default 30d)")
	fs.StringVar(&o.requestedBy, "requested-by", "", fmt.Sprintf("who asked or files for them, at most %d characters (default: the database user)", maxRequestedBy))
	fs.StringVar(&o.requestedAt, "requested-at", "", "when the person asked, RFC 3339 (default now; never in the future)")
	fs.StringVar(&o.output, "format", "text", "text or json")
	fs.alias("output", "format")
	fs.choose("format", textFormats...)
	fs.StringVar(&o.source, "source", source.DefaultRelation, "SCHEMA.RELATION the app's sessions are in, to check that the IDs are known")
	fs.envName("requested-by", "RETENTION_ACTOR")
	fs.envName("source")
	return fs
}

// parseDue reads a deadline: a Go duration (72h, 90m) or whole days (30d). It must be positive.
func parseDue(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil || days == 0 {
			return 0, usagef("invalid --due %q: want a positive duration such as 72h or 30d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, usagef("invalid --due %q: want a positive duration such as 72h or 30d", s)
		}
	}
	if d < time.Minute {
		return 0, usagef("invalid --due %q: a deadline under a minute cannot be met", s)
	}
	return d, nil
}

// check validates the options before connecting, and returns the request to file.
func (o *eraseOptions) check(now time.Time) (source.ErasureRequest, error) {
	req := source.ErasureRequest{CharacterID: o.character, SessionID: o.session, Reason: strings.TrimSpace(o.reason),
		RequestedBy: strings.TrimSpace(o.requestedBy)}
	switch {
	case o.endUser != "" && !policy.ValidIDs(o.endUser, "x"):
		return req, usagef("erase: invalid --end-user %q: it must not be blank, hold control characters or exceed %d bytes", o.endUser, policy.MaxIDLength)
	case o.endUser != "" && o.session != "":
		return req, usagef("erase: --session and --end-user do not go together: an end user's request covers every session of the end user")
	case o.endUserRecord && o.endUser == "":
		return req, usagef("erase: --end-user-record needs --end-user")
	case o.character == "" && o.endUser == "":
		return req, usagef("erase: --character is required (or --end-user)")
	case o.character != "" && !policy.ValidIDs(o.character, "x"):
		return req, usagef("erase: invalid --character %q: it must not be blank, hold control characters or exceed %d bytes", o.character, policy.MaxIDLength)
	case o.session != "" && !policy.ValidIDs("x", o.session):
		return req, usagef("erase: invalid --session %q: it must not be blank, hold control characters or exceed %d bytes", o.session, policy.MaxIDLength)
	case req.Reason == "":
		return req, usagef("erase: --reason is required: say why (e.g. the ticket), without personal data")
	case len(req.Reason) > 1000:
		return req, usagef("erase: --reason is longer than 1000 characters")
	case utf8.RuneCountInString(req.RequestedBy) > maxRequestedBy:
		return req, usagef("erase: --requested-by is longer than %d characters (%d): name who asked, e.g. an e-mail address or a team",
			maxRequestedBy, utf8.RuneCountInString(req.RequestedBy))
	}
	if o.due != "" {
		d, err := parseDue(o.due)
		if err != nil {
			return req, err
		}
		req.Due = d
	}
	if o.requestedAt != "" {
		t, err := time.Parse(time.RFC3339, o.requestedAt)
		if err != nil {
			return req, usagef("invalid --requested-at %q: want RFC 3339, e.g. 2026-11-30T09:00:00Z", o.requestedAt)
		}
		if t.After(now.Add(time.Minute)) {
			return req, usagef("invalid --requested-at %q: it is in the future", o.requestedAt)
		}
		req.RequestedAt = t
	}
	return req, nil
}

// erase is "retention erase": it files one erasure request.
func (a *app) erase(ctx context.Context, args []string) error {
	o, err := parseOptions(args, a.getenv, eraseFlags)
	if err != nil {
		return err
	}
	req, err := o.check(time.Now())
	if err != nil {
		return err
	}
	pool, store, ps, err := a.policyStore(ctx, o.source)
	if err != nil {
		return err
	}
	defer pool.Close()
	ps.close() // the IDs are checked against the job's set as last synced
	checked := store.Relation().String()
	if ps != nil {
		checked = ps.name + " as last synced"
	}
	if o.endUser != "" {
		return a.eraseEndUser(ctx, store, *o, req, checked)
	}
	fp, err := store.ErasureFootprint(ctx, req.CharacterID, req.SessionID)
	if err != nil {
		return err
	}
	f, err := store.FileErasure(ctx, req)
	if errors.Is(err, source.ErrBadRequest) {
		return usagef("erase: %s", explainConstraintMessage(err.Error()))
	}
	if err != nil {
		return err
	}
	switch {
	case fp.InSource > 0 || fp.Deleted > 0:
	case req.SessionID == "":
		fmt.Fprintf(a.stderr, "WARNING: character %q has no session in %s and none recorded deleted: the request will "+
			"delete only what Convai lists for that ID, maybe nothing. Check the character ID (spaces and case count); "+
			"a hold stops a mistaken request.\n", req.CharacterID, checked)
	default:
		fmt.Fprintf(a.stderr, "note: %s has no session %q of character %q and none was deleted: it is sent all the same "+
			"(the app may not have stored it). Check the IDs if that is a surprise (spaces and case count).\n",
			checked, req.SessionID, req.CharacterID)
	}
	if o.output == "json" {
		return writeJSON(a.stdout, struct {
			source.Filed
			CharacterID string `json:"character_id"`
			SessionID   string `json:"session_id,omitempty"`
		}{f, req.CharacterID, req.SessionID})
	}
	what := fmt.Sprintf("every session of character %q", req.CharacterID)
	if req.SessionID != "" {
		what = fmt.Sprintf("session %q of character %q", req.SessionID, req.CharacterID)
	}
	_, err = fmt.Fprintf(a.stdout, "filed erasure request %d: %s, requested %s by %s, due %s.\n"+
		"The next run sends it first; retention report shows its state.\n",
		f.ID, what, f.RequestedAt.UTC().Format(time.RFC3339), f.RequestedBy, f.DueAt.UTC().Format(time.RFC3339))
	return err
}

// eraseEndUser files an end user's request (retention erase --end-user).
func (a *app) eraseEndUser(ctx context.Context, store *source.Store, o eraseOptions, req source.ErasureRequest, checked string) error {
	sessions, characters, err := store.EndUserFootprint(ctx, o.endUser)
	if err != nil {
		return err
	}
	f, err := store.FileEndUserErasure(ctx, source.EndUserErasure{EndUserID: o.endUser, CharacterID: o.character,
		Record: o.endUserRecord, Reason: req.Reason, RequestedBy: req.RequestedBy, RequestedAt: req.RequestedAt, Due: req.Due})
	if errors.Is(err, source.ErrBadRequest) {
		return usagef("erase: %v", err)
	}
	if err != nil {
		return err
	}
	if characters == 0 {
		fmt.Fprintf(a.stderr, "WARNING: end user %q has no session in %s and was never seen with a character: the request "+
			"erases nothing but what --character names (and, with --end-user-record, the end user's record). Check the ID "+
			"(spaces and case count) and that the source has an end_user_id column.\n", o.endUser, checked)
	}
	if o.output == "json" {
		return writeJSON(a.stdout, struct {
			source.FiledEndUser
			EndUserID     string `json:"end_user_id"`
			CharacterID   string `json:"character_id,omitempty"`
			EndUserRecord bool   `json:"end_user_record"`
			Sessions      int64  `json:"sessions_in_set"`
		}{f, o.endUser, o.character, o.endUserRecord, sessions})
	}
	what := fmt.Sprintf("every session and the long-term memory of end user %q", o.endUser)
	if o.character != "" {
		what += fmt.Sprintf(" with character %q", o.character)
	}
	if o.endUserRecord {
		what += ", then the end user's record"
	}
	_, err = fmt.Fprintf(a.stdout, "filed end user erasure request %d: %s, requested %s by %s, due %s.\n"+
		"It covers %d character(s) so far %v and %d session(s) in the set; a run adds the characters seen since.\n"+
		"The next run sends it first; retention report --end-user shows its state.\n",
		f.ID, what, f.RequestedAt.UTC().Format(time.RFC3339), f.RequestedBy, f.DueAt.UTC().Format(time.RFC3339),
		len(f.Characters), f.Characters, sessions)
	return err
}
