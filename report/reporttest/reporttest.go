// Package reporttest reads back what each format of a compliance report states, without the
// report package's own code, so that tests can check that the four formats state the same
// figures: FromText, FromHTML, FromCSV and FromJSON each return the Figures one output states.
package reporttest

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"

	"github.com/convai-retention/retention/report"
)

// Total is the key of the totals in Figures.Characters and Figures.Verification.
const Total = "(total)"

// Figures is what one rendering of a report states. Lags are left out: each format writes them
// its own way (seconds, or "3d 22h").
type Figures struct {
	LogSize int64
	LogRoot string
	// ChainSeq and ChainHash are the v1 chain's head; both zero without v1 seals, which the
	// table and the HTML do not state.
	ChainSeq  int64
	ChainHash string
	// Overdue (now), Late and Deleted (in the period) as the heading states them; from the
	// totals for JSON and CSV.
	Overdue, Late, Deleted int64
	// Characters maps a character (or Total) to deleted, late, failed, outstanding, held,
	// overdue.
	Characters map[string][6]int64
	// Days maps a day to deleted, late, failed, backlog, overdue.
	Days map[string][5]int64
	Runs int
	// Verification maps a character (or Total) to deleted, verified, found present,
	// discovered, in memory, in memory and erased since, in memory with no known end user.
	Verification map[string][7]int64
	// ErasureTotals is open, overdue, blocked, completed; Erasures maps a request to its
	// state as the table writes it (e.g. "blocked, overdue").
	ErasureTotals [4]int64
	Erasures      map[int64]string
	// HoldsStated is how many unmatched holds the heading counts; UnmatchedHolds their IDs.
	HoldsStated    int
	UnmatchedHolds []int64
	// Checks are the commands the report tells its reader to run.
	Checks []string
}

func newFigures() Figures {
	return Figures{Characters: map[string][6]int64{}, Days: map[string][5]int64{}, Verification: map[string][7]int64{},
		Erasures: map[int64]string{}, UnmatchedHolds: []int64{}, Checks: []string{}}
}

// FromJSON reads the JSON format.
func FromJSON(data []byte) (Figures, error) {
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Figures{}, fmt.Errorf("json: %w", err)
	}
	f := newFigures()
	f.LogSize, f.LogRoot = r.Chain.LogSize, r.Chain.LogRoot
	if r.Chain.Seq > 0 {
		f.ChainSeq, f.ChainHash = r.Chain.Seq, r.Chain.Hash
	}
	f.Overdue, f.Late, f.Deleted = r.Total.Overdue, r.Total.DeletedLate, r.Total.Deleted
	counts := func(c report.CharacterRow) [6]int64 {
		return [6]int64{c.Deleted, c.DeletedLate, c.Failed, c.Outstanding, c.Held, c.Overdue}
	}
	for _, c := range r.Characters {
		f.Characters[c.CharacterID] = counts(c)
	}
	f.Characters[Total] = counts(r.Total)
	for _, d := range r.Days {
		f.Days[d.Day] = [5]int64{d.Deleted, d.DeletedLate, d.Failed, d.Backlog, d.Overdue}
	}
	f.Runs = len(r.Runs)
	for _, v := range r.Verification {
		f.Verification[v.CharacterID] = [7]int64{v.Deleted, v.Verified, v.Present, v.Discovered, v.InMemory, v.InMemoryErased, v.InMemoryEndUserUnknown}
	}
	t := r.VerificationTotal
	f.Verification[Total] = [7]int64{t.Deleted, t.Verified, t.Present, t.Discovered, t.InMemory, t.InMemoryErased, t.InMemoryEndUserUnknown}
	e := r.ErasureTotals
	f.ErasureTotals = [4]int64{int64(e.Open), int64(e.Overdue), int64(e.Blocked), int64(e.Completed)}
	for _, x := range r.Erasures {
		f.Erasures[x.ID] = x.StateText()
	}
	f.HoldsStated = len(r.UnmatchedHolds)
	for _, h := range r.UnmatchedHolds {
		f.UnmatchedHolds = append(f.UnmatchedHolds, h.ID)
	}
	for _, c := range r.Checks {
		f.Checks = append(f.Checks, c.Command)
	}
	return f, nil
}

// The heading's statements, as the table and the HTML word them (without the label).
var (
	logRE     = regexp.MustCompile(`^(\d+) leaves; root ([0-9a-f]{64})$`)
	chainRE   = regexp.MustCompile(`^(\d+) seals; head (\d+):([0-9a-f]{64})$`)
	overdueRE = regexp.MustCompile(`^(?:(\d+) session\(s\) now: expired for longer than the SLA|none now: every session expired for longer than the SLA)`)
	lateRE    = regexp.MustCompile(`^(\d+) of the (\d+) deletion\(s\) in the period: confirmed more than the SLA`)
	holdsRE   = regexp.MustCompile(`^(?:(\d+) active hold\(s\) match no session of the source|every active hold matches a session of the source$)`)
	verRE     = regexp.MustCompile(`^(\d+) of (\d+) deleted sessions, (\d+) found present; (\d+) sessions found at Convai.*; (\d+) deleted sessions had gone into long-term memory, as Convai's list said \((\d+) with their end user's memory erased since, (\d+) whose end user is not known\)`)
	erasureRE = regexp.MustCompile(`^(\d+) open \((\d+) overdue\), (\d+) blocked by a hold, (\d+) completed in the period`)
)

// statements reads the heading: key (log, v1_chain, overdue, late, unmatched_holds) to text.
func (f *Figures) statements(st map[string]string) error {
	m, err := match(logRE, st["log"], "log")
	if err != nil {
		return err
	}
	f.LogSize, f.LogRoot = atoi(m[1]), m[2]
	if s, ok := st["v1_chain"]; ok {
		m, err := match(chainRE, s, "v1 chain")
		if err != nil {
			return err
		}
		if m[1] != m[2] {
			return fmt.Errorf("v1 chain: %d seals but head %s", atoi(m[1]), m[2])
		}
		f.ChainSeq, f.ChainHash = atoi(m[2]), m[3]
	}
	if m, err = match(overdueRE, st["overdue"], "overdue"); err != nil {
		return err
	}
	f.Overdue = atoi(m[1])
	if m, err = match(lateRE, st["late"], "late"); err != nil {
		return err
	}
	f.Late, f.Deleted = atoi(m[1]), atoi(m[2])
	if m, err = match(holdsRE, st["unmatched_holds"], "holds"); err != nil {
		return err
	}
	f.HoldsStated = int(atoi(m[1]))
	return nil
}

func (f *Figures) verificationTotals(s string) error {
	m, err := match(verRE, s, "verification")
	if err != nil {
		return err
	}
	got := [7]int64{atoi(m[2]), atoi(m[1]), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6]), atoi(m[7])}
	if table, ok := f.Verification[Total]; ok && table != got {
		return fmt.Errorf("verification: the sentence says %v, the total row %v", got, table)
	}
	f.Verification[Total] = got
	return nil
}

func (f *Figures) erasureTotals(s string) error {
	m, err := match(erasureRE, s, "erasure requests")
	if err != nil {
		return err
	}
	f.ErasureTotals = [4]int64{atoi(m[1]), atoi(m[2]), atoi(m[3]), atoi(m[4])}
	return nil
}

// textLabels maps the table's labels (in lower case) to the statements' keys.
var textLabels = map[string]string{"log": "log", "v1 chain": "v1_chain", "overdue": "overdue", "late": "late", "holds": "unmatched_holds"}

var (
	cellsRE = regexp.MustCompile(`\s{2,}`)
	dayRE   = regexp.MustCompile(`^(\d{4}-\d\d-\d\d)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)
	runsRE  = regexp.MustCompile(`(?m)^Runs started in the period: (\d+)$`)
	// The headers of the tables, by section.
	headers = map[string]*regexp.Regexp{
		"characters":   regexp.MustCompile(`^CHARACTER\s+POLICY IN FORCE\s`),
		"holds":        regexp.MustCompile(`^HOLD\s+CHARACTER\s`),
		"verification": regexp.MustCompile(`^CHARACTER\s+DELETED\s+VERIFIED\s`),
		"erasures":     regexp.MustCompile(`^ID\s+CHARACTER\s+SESSION\s`),
	}
)

// FromText reads the table format. Character IDs must not hold two spaces in a row.
func FromText(text string) (Figures, error) {
	f := newFigures()
	lines := strings.Split(text, "\n")
	st := map[string]string{}
	i := 1 // after the title
	for ; i < len(lines) && lines[i] != ""; i++ {
		label, rest := strings.TrimRight(lines[i][:min(len(lines[i]), 10)], " "), strings.TrimSpace(lines[i][min(len(lines[i]), 10):])
		if label == "" {
			continue // a check's explanation
		}
		switch key := textLabels[strings.ToLower(label)]; {
		case key != "":
			st[key] = rest
		case label == "check":
			f.Checks = append(f.Checks, rest)
		}
	}
	if err := f.statements(st); err != nil {
		return f, fmt.Errorf("text: %w", err)
	}
	section := ""
	for ; i < len(lines); i++ {
		line := lines[i]
		switch {
		case line == "":
			section = ""
			continue
		case header(line) != "":
			section = header(line)
			continue
		case strings.HasPrefix(line, "Verified against Convai's list (all time): "):
			if err := f.verificationTotals(strings.TrimPrefix(line, "Verified against Convai's list (all time): ")); err != nil {
				return f, fmt.Errorf("text: %w", err)
			}
			continue
		case strings.HasPrefix(line, "Erasure requests: "):
			if err := f.erasureTotals(strings.TrimPrefix(line, "Erasure requests: ")); err != nil {
				return f, fmt.Errorf("text: %w", err)
			}
			continue
		}
		if m := dayRE.FindStringSubmatch(line); m != nil {
			f.Days[m[1]] = [5]int64{atoi(m[2]), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6])}
			continue
		}
		cells := cellsRE.Split(strings.TrimRight(line, " "), -1)
		switch section {
		case "characters":
			// The name, the policy (absent on the total's row), six counts, three lags.
			if len(cells) < 10 {
				return f, fmt.Errorf("text: character row %q", line)
			}
			n := cells[len(cells)-9 : len(cells)-3]
			f.Characters[cells[0]] = [6]int64{atoi(n[0]), atoi(n[1]), atoi(n[2]), atoi(n[3]), atoi(n[4]), atoi(n[5])}
		case "holds":
			f.UnmatchedHolds = append(f.UnmatchedHolds, atoi(cells[0]))
		case "verification":
			if len(cells) != 10 {
				return f, fmt.Errorf("text: verification row %q", line)
			}
			got := [7]int64{atoi(cells[1]), atoi(cells[2]), atoi(cells[4]), atoi(cells[6]), atoi(cells[7]), atoi(cells[8]), atoi(cells[9])}
			if cells[0] == Total && got != f.Verification[Total] {
				return f, fmt.Errorf("text: verification: the sentence says %v, the total row %v", f.Verification[Total], got)
			}
			f.Verification[cells[0]] = got
		case "erasures":
			// Empty cells merge with their neighbours' padding; the first four never are.
			if len(cells) < 4 {
				return f, fmt.Errorf("text: erasure row %q", line)
			}
			f.Erasures[atoi(cells[0])] = cells[3]
		}
	}
	m := runsRE.FindStringSubmatch(text)
	if m == nil {
		return f, fmt.Errorf("text: no count of runs")
	}
	f.Runs = int(atoi(m[1]))
	return f, nil
}

var (
	ddRE      = regexp.MustCompile(`<dd id="([a-z0-9_]+)"[^>]*>(.*?)</dd>`)
	commandRE = regexp.MustCompile(`<code class="command">(.*?)</code>`)
	rowRE     = regexp.MustCompile(`(?s)<tr data-([a-z]+)="([^"]*)">(.*?)</tr>`)
	fieldRE   = regexp.MustCompile(`data-field="([a-z0-9_]+)">([^<]*)<`)
	paraRE    = regexp.MustCompile(`<p id="([a-z-]+)">(.*?)</p>`)
)

// FromHTML reads the HTML format, as written or as a browser's --dump-dom prints it.
func FromHTML(page string) (Figures, error) {
	f := newFigures()
	st := map[string]string{}
	for _, m := range ddRE.FindAllStringSubmatch(page, -1) {
		st[m[1]] = html.UnescapeString(m[2])
	}
	if err := f.statements(st); err != nil {
		return f, fmt.Errorf("html: %w", err)
	}
	for _, m := range commandRE.FindAllStringSubmatch(page, -1) {
		f.Checks = append(f.Checks, html.UnescapeString(m[1]))
	}
	for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
		kind, key := m[1], html.UnescapeString(m[2])
		c := map[string]string{}
		for _, x := range fieldRE.FindAllStringSubmatch(m[3], -1) {
			c[x[1]] = html.UnescapeString(x[2])
		}
		switch kind {
		case "character":
			f.Characters[key] = [6]int64{atoi(c["deleted"]), atoi(c["deleted_late"]), atoi(c["failed"]), atoi(c["outstanding"]),
				atoi(c["held"]), atoi(c["overdue"])}
		case "day":
			f.Days[key] = [5]int64{atoi(c["deleted"]), atoi(c["deleted_late"]), atoi(c["failed"]), atoi(c["backlog"]), atoi(c["overdue"])}
		case "run":
			f.Runs++
		case "verification":
			f.Verification[key] = [7]int64{atoi(c["deleted"]), atoi(c["verified"]), atoi(c["present"]), atoi(c["discovered"]), atoi(c["in_memory"]),
				atoi(c["in_memory_erased"]), atoi(c["in_memory_end_user_unknown"])}
		case "erasure":
			f.Erasures[atoi(key)] = c["state"]
		case "hold":
			f.UnmatchedHolds = append(f.UnmatchedHolds, atoi(key))
		}
	}
	paras := map[string]string{}
	for _, m := range paraRE.FindAllStringSubmatch(page, -1) {
		paras[m[1]] = html.UnescapeString(m[2])
	}
	if err := f.verificationTotals(paras["verification-totals"]); err != nil {
		return f, fmt.Errorf("html: %w", err)
	}
	if err := f.erasureTotals(paras["erasure-totals"]); err != nil {
		return f, fmt.Errorf("html: %w", err)
	}
	return f, nil
}

// FromCSV reads the CSV format: one file per table, every table of report.CSVTables.
func FromCSV(tables map[report.CSVTable]string) (Figures, error) {
	f := newFigures()
	for _, t := range []struct {
		table report.CSVTable
		read  func(rows []map[string]string) error
	}{
		{report.CSVSummary, f.csvSummary},
		{report.CSVCharacters, f.csvCharacters},
		{report.CSVDays, f.csvDays},
		{report.CSVRuns, f.csvRuns},
		{report.CSVVerification, f.csvVerification},
		{report.CSVErasures, f.csvErasures},
		{report.CSVUnmatchedHolds, f.csvUnmatchedHolds},
	} {
		rows, err := readCSVTable(tables, t.table)
		if err != nil {
			return f, err
		}
		if err := t.read(rows); err != nil {
			return f, err
		}
	}
	return f, nil
}

// readCSVTable returns the rows of table t, each a map from its header's names to its values.
func readCSVTable(tables map[report.CSVTable]string, t report.CSVTable) ([]map[string]string, error) {
	text, ok := tables[t]
	if !ok {
		return nil, fmt.Errorf("csv: no table %s", t)
	}
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("csv: table %s: %v", t, err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out, nil
}

// csvSummary reads the summary table: the checks and the figures of the statements.
func (f *Figures) csvSummary(rows []map[string]string) error {
	s := map[string]string{}
	for _, row := range rows {
		if row["figure"] == "check" {
			f.Checks = append(f.Checks, row["value"])
			continue
		}
		s[row["figure"]] = row["value"]
	}
	f.LogSize, f.LogRoot = atoi(s["log_size"]), s["log_root"]
	if seq := atoi(s["v1_chain_seq"]); seq > 0 {
		f.ChainSeq, f.ChainHash = seq, s["v1_chain_hash"]
	}
	f.Overdue, f.Late, f.Deleted = atoi(s["overdue"]), atoi(s["deleted_late"]), atoi(s["deleted"])
	f.Runs = int(atoi(s["runs"]))
	f.ErasureTotals = [4]int64{atoi(s["erasure_open"]), atoi(s["erasure_overdue"]), atoi(s["erasure_blocked"]), atoi(s["erasure_completed"])}
	f.HoldsStated = int(atoi(s["unmatched_holds"]))
	f.Verification[Total] = [7]int64{atoi(s["verification_deleted"]), atoi(s["verified"]), atoi(s["found_present"]), atoi(s["discovered"]),
		atoi(s["in_memory"]), atoi(s["in_memory_erased"]), atoi(s["in_memory_end_user_unknown"])}
	return nil
}

// csvCharacters reads the characters table, its total row included.
func (f *Figures) csvCharacters(rows []map[string]string) error {
	for _, c := range rows {
		f.Characters[csvKey(c)] = [6]int64{atoi(c["deleted"]), atoi(c["deleted_late"]), atoi(c["failed_not_deleted"]), atoi(c["outstanding"]),
			atoi(c["held"]), atoi(c["overdue"])}
	}
	return nil
}

// csvKey is the key of a row of a per-character CSV table: its character, or Total for the
// total row.
func csvKey(row map[string]string) string {
	if row["scope"] == "total" {
		return Total
	}
	return row["character_id"]
}

// csvDays reads the days table.
func (f *Figures) csvDays(rows []map[string]string) error {
	for _, d := range rows {
		f.Days[d["day"]] = [5]int64{atoi(d["deleted"]), atoi(d["deleted_late"]), atoi(d["failed"]), atoi(d["backlog"]), atoi(d["overdue"])}
	}
	return nil
}

// csvRuns checks that the runs table has as many rows as the summary counts runs.
func (f *Figures) csvRuns(rows []map[string]string) error {
	if len(rows) != f.Runs {
		return fmt.Errorf("csv: the summary counts %d runs, the runs table has %d", f.Runs, len(rows))
	}
	return nil
}

// csvVerification reads the verification table; its total row must state the summary's figures.
func (f *Figures) csvVerification(rows []map[string]string) error {
	for _, v := range rows {
		key := csvKey(v)
		got := [7]int64{atoi(v["deleted"]), atoi(v["verified"]), atoi(v["found_present"]), atoi(v["discovered"]), atoi(v["in_memory"]),
			atoi(v["in_memory_erased"]), atoi(v["in_memory_end_user_unknown"])}
		if key == Total && got != f.Verification[Total] {
			return fmt.Errorf("csv: the summary's verification figures %v, the total row %v", f.Verification[Total], got)
		}
		f.Verification[key] = got
	}
	return nil
}

// csvErasures reads the erasure requests' states, overdue included.
func (f *Figures) csvErasures(rows []map[string]string) error {
	for _, e := range rows {
		state := e["state"]
		if e["overdue"] == "true" && state != "overdue" {
			state += ", overdue"
		}
		f.Erasures[atoi(e["request_id"])] = state
	}
	return nil
}

// csvUnmatchedHolds reads the IDs of the holds that match no session.
func (f *Figures) csvUnmatchedHolds(rows []map[string]string) error {
	for _, h := range rows {
		f.UnmatchedHolds = append(f.UnmatchedHolds, atoi(h["hold_id"]))
	}
	return nil
}

// header returns the section whose table header line is, or "".
func header(line string) string {
	for section, re := range headers {
		if re.MatchString(line) {
			return section
		}
	}
	return ""
}

func match(re *regexp.Regexp, s, what string) ([]string, error) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%s: %q does not read %s", what, s, re)
	}
	return m, nil
}

// atoi reads a count; "" (a figure not stated) is 0, anything else unreadable is -1, which no
// other format states.
func atoi(s string) int64 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
