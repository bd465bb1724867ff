package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/convai-retention/retention/internal/secret"
)

// newLogger returns a logger writing to w: text on a terminal, JSON otherwise, at level
// ("debug", "info", "warn" or "error"). Every message and string attribute passes through the
// redactor that secrets returns at the time (it learns secrets as they are read).
func newLogger(w io.Writer, level string, secrets func() *secret.Redactor) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("invalid log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(&redactHandler{Handler: h, secrets: secrets}), nil
}

// redactHandler keeps secrets out of the logs, whatever a message or an error carries.
type redactHandler struct {
	slog.Handler
	secrets func() *secret.Redactor
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.secrets().Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.secrets().Redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.secrets().Redact(err.Error()))
		}
		s := fmt.Sprint(v.Any())
		if redacted := h.secrets().Redact(s); redacted != s {
			return slog.String(a.Key, redacted)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &redactHandler{Handler: h.Handler.WithAttrs(clean), secrets: h.secrets}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{Handler: h.Handler.WithGroup(name), secrets: h.secrets}
}

// logLevel returns the level from the flag or LOG_LEVEL, default info.
func logLevel(flagValue string, getenv env) string {
	if flagValue != "" {
		return flagValue
	}
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		return v
	}
	return "info"
}
