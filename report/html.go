package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed templates
var templateFS embed.FS

// style is the stylesheet both pages inline: the file needs nothing else, not even scripts.
var style = template.CSS(must(templateFS.ReadFile("templates/style.css")))

var funcs = template.FuncMap{
	"human": human,
	"time": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			if t.IsZero() {
				return "" // a time the row does not have
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if t != nil {
				return t.UTC().Format("2006-01-02 15:04:05Z")
			}
		}
		return ""
	},
	"int": func(v any) string {
		switch n := v.(type) {
		case *int32:
			return optInt(n)
		case *int64:
			return optInt(n)
		}
		return ""
	},
	"str":       optString,
	"percent":   percent,
	"printable": printable,
	"title":     title,
}

// percent writes a share as a whole percentage, e.g. "75%".
func percent(share float64) string { return fmt.Sprintf("%.0f%%", 100*share) }

// title writes s with its first letter in upper case.
func title(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

var (
	reportPage  = template.Must(template.New("report.html").Funcs(funcs).ParseFS(templateFS, "templates/report.html"))
	sessionPage = template.Must(template.New("session.html").Funcs(funcs).ParseFS(templateFS, "templates/session.html"))
)

func (r *Report) writeHTML(w io.Writer) error {
	days := make([]string, len(r.Days))
	deleted, failed := make([]int64, len(r.Days)), make([]int64, len(r.Days))
	backlog, overdue := make([]int64, len(r.Days)), make([]int64, len(r.Days))
	for i, d := range r.Days {
		days[i] = d.Day
		deleted[i], failed[i], backlog[i], overdue[i] = d.Deleted, d.Failed, d.Backlog, d.Overdue
	}
	return reportPage.Execute(w, map[string]any{
		"R":         r,
		"Style":     style,
		"Since":     rfc3339(r.Since),
		"Until":     rfc3339(r.Until),
		"Generated": rfc3339(r.GeneratedAt),
		"SLA":       slaText(r.SLA()),
		"DeletionsChart": barChart("Outcomes per day", days, []series{
			{name: "deleted", color: deletedColor, values: deleted},
			{name: "failed", color: failedColor, values: failed},
		}),
		"BacklogChart": lineChart("Backlog and overdue at the end of each day", days, []series{
			{name: "backlog", color: backlogColor, values: backlog},
			{name: "overdue", color: overdueColor, values: overdue},
		}),
	})
}

func (e *Evidence) writeHTML(w io.Writer) error {
	return sessionPage.Execute(w, map[string]any{"E": e, "Style": style})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
