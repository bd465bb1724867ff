package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format is an output format.
type Format string

// The output formats.
const (
	FormatTable Format = "table" // aligned text for a terminal
	FormatCSV   Format = "csv"   // one table with a header row; see CSVTable
	FormatJSON  Format = "json"  // everything, for programs
	FormatHTML  Format = "html"  // one self-contained file with charts, printable
)

// ParseFormat returns the Format named s, or a *FormatError.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatCSV, FormatJSON, FormatHTML:
		return f, nil
	}
	return "", &FormatError{Field: "format", Value: s, Want: "table, csv, json or html"}
}

// CSVTable is the table a CSV file holds: a CSV has one.
type CSVTable string

// The tables of a CSV report.
const (
	CSVCharacters     CSVTable = "characters"      // one row per character, then the total
	CSVRuns           CSVTable = "runs"            // one row per run
	CSVDays           CSVTable = "days"            // one row per day
	CSVErasures       CSVTable = "erasures"        // one row per erasure request
	CSVVerification   CSVTable = "verification"    // one row per character verified or with a deletion, then the total
	CSVUnmatchedHolds CSVTable = "unmatched-holds" // one row per active hold that matches no session
	CSVSummary        CSVTable = "summary"         // one row per headline figure and per check command
)

// CSVTables lists the tables of a CSV report, CSVCharacters (the default) first.
var CSVTables = []CSVTable{CSVCharacters, CSVRuns, CSVDays, CSVErasures, CSVVerification, CSVUnmatchedHolds, CSVSummary}

// CSVTableNames lists CSVTables for people: "characters, runs, ... or summary".
func CSVTableNames() string {
	names := make([]string, len(CSVTables))
	for i, t := range CSVTables {
		names[i] = string(t)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ParseCSVTable returns the CSVTable named s, or a *FormatError.
func ParseCSVTable(s string) (CSVTable, error) {
	if slices.Contains(CSVTables, CSVTable(s)) {
		return CSVTable(s), nil
	}
	return "", &FormatError{Field: "table", Value: s, Want: CSVTableNames()}
}

// FormatError is returned by ParseFormat and ParseCSVTable for an unknown name.
type FormatError struct {
	Field, Value, Want string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("invalid --%s %q: want %s", e.Field, e.Value, e.Want)
}

// Write renders the report in format f; a CSV holds table (default CSVCharacters).
func (r *Report) Write(w io.Writer, f Format, table CSVTable) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, r)
	case FormatCSV:
		return r.writeCSV(w, table)
	case FormatHTML:
		return r.writeHTML(w)
	}
	return r.writeText(w)
}

// Write renders the evidence in format f; a CSV lists the attempts.
func (e *Evidence) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		return writeJSON(w, e)
	case FormatCSV:
		return e.writeCSV(w)
	case FormatHTML:
		return e.writeHTML(w)
	}
	return e.writeText(w)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// human writes a duration in seconds for a person: "850ms", "42.5s", "12m 5s", "4h 12m",
// "3d 4h". nil is "-".
func human(sec *float64) string {
	if sec == nil {
		return "-"
	}
	s := *sec
	neg := ""
	if s < 0 {
		neg, s = "-", -s
	}
	d := time.Duration(math.Round(s * float64(time.Second)))
	switch {
	case d < time.Second:
		return neg + strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return neg + strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%s%dm %ds", neg, int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%s%dh %dm", neg, int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%s%dd %dh", neg, int(d.Hours())/24, int(d.Hours())%24)
}

// seconds writes a number of seconds exactly, "" for nil.
func seconds(sec *float64) string {
	if sec == nil {
		return ""
	}
	return strconv.FormatFloat(*sec, 'f', -1, 64)
}

// slaText writes the SLA as days when whole, e.g. "7d", else as a Go duration.
func slaText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// optZeroTime is rfc3339, or "" for the zero time (a value the row does not have).
func optZeroTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return rfc3339(t)
}

func optTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc3339(*t)
}

func optInt[T int32 | int64](p *T) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(int64(*p), 10)
}

func optString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
