// Package policyfile reads and writes the retention policies as a YAML file, the form that
// "retention policy export" prints and "retention policy apply" makes the table equal to:
//
//	default:
//	  max_age: 30 days
//	  note: privacy policy section 4
//	characters:
//	  char-kids:
//	    max_age: 7 days
//	    memory_max_age: 30 days
//	    note: children's character
//	  char-legal:
//	    max_age: 1 day
//	    enabled: false
//
// Each entry has max_age (a PostgreSQL interval, required), memory_max_age (an interval with the
// same rule; absent: the policy keeps long-term memory as long as Convai does), enabled (default
// true) and note (default empty). The file is the whole truth: an entry without memory_max_age
// is a policy without one. It is pure: it checks the shape of the file, with the line of every
// mistake. PostgreSQL reads the intervals: ParseChecked takes a reader that asks it about every
// max_age and memory_max_age at once, and checks what it read against the rule of package
// policy, so that every mistake of a file, of its shape and of its values, is named in one pass.
package policyfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/convai-retention/retention/policy"
)

// Entry is one policy of the file.
type Entry struct {
	// CharacterID is the character, "" for the default policy.
	CharacterID string `json:"character_id"`
	MaxAge      string `json:"max_age"`
	// MemoryMaxAge is the policy's memory_max_age, "" when it sets none (NULL: long-term memory
	// is kept as long as Convai keeps it; null in JSON).
	MemoryMaxAge string `json:"-"`
	Enabled      bool   `json:"enabled"`
	Note         string `json:"note"`
	// Line is where the entry starts in the file, MaxAgeLine and MemoryMaxAgeLine where its
	// max_age and memory_max_age are (0 for entries not read from a file, or without one).
	Line             int `json:"line,omitempty"`
	MaxAgeLine       int `json:"-"`
	MemoryMaxAgeLine int `json:"-"`
}

// MarshalJSON writes the entry with memory_max_age null when it sets none.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	var mem *string
	if e.MemoryMaxAge != "" {
		mem = &e.MemoryMaxAge
	}
	return json.Marshal(struct {
		plain
		MemoryMaxAge *string `json:"memory_max_age"`
	}{plain(e), mem})
}

// IsDefault reports whether e is the default policy.
func (e Entry) IsDefault() bool { return e.CharacterID == "" }

// File is the policies of a file: at most one default, at most one entry per character,
// characters sorted.
type File struct {
	Default    *Entry
	Characters []Entry
}

// Entries returns the default (if any), then the characters.
func (f *File) Entries() []Entry {
	var out []Entry
	if f.Default != nil {
		out = append(out, *f.Default)
	}
	return append(out, f.Characters...)
}

// Error is a mistake in a policy file: its line (0 when the file as a whole is wrong) and why.
type Error struct {
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Reason
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// ErrorList is every mistake found in a file, in line order. Parse returns one.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Parse reads a policy file. Unknown keys, a missing or empty max_age, a value of the wrong type,
// a blank or duplicate character, two defaults and a second YAML document are errors, each with
// its line; Parse returns them all as an ErrorList. Parse reads r to its end: bound it.
func Parse(r io.Reader) (*File, error) {
	return parse(r, nil)
}

// Reading is what PostgreSQL made of one max_age or memory_max_age.
type Reading struct {
	// Text is the interval as PostgreSQL prints it ("00:10:00" for "10 minutes").
	Text     string
	Interval policy.Interval
	// Invalid says why PostgreSQL does not read the value as an interval; "" when it does.
	Invalid string
}

// ReadIntervals reads max_age and memory_max_age texts, each once, as PostgreSQL does, and returns a Reading for
// every one of them. An error is a failure to ask (the connection), not a mistake of the file:
// ParseChecked returns it as it is.
type ReadIntervals func(maxAges []string) (map[string]Reading, error)

// ParseChecked is Parse, and also reads every max_age and memory_max_age with read, in one call
// with each distinct text once, and checks it with policy.CheckMaxAge (memory_max_age has
// max_age's rule): a value PostgreSQL does not read, one without a unit, one under an hour, over
// 200 years or with a negative part is a mistake at its line, naming the policy and the key, with
// a hint that fits it, in the same ErrorList as the file's other mistakes.
func ParseChecked(r io.Reader, read ReadIntervals) (*File, error) {
	if read == nil {
		return nil, errors.New("policyfile: ParseChecked needs a ReadIntervals")
	}
	return parse(r, read)
}

func parse(r io.Reader, read ReadIntervals) (*File, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, ErrorList{yamlError(err)}
	}
	// Only one document: a second one would be read by nothing, and its policies silently lost.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, ErrorList{yamlError(err)}
	default:
		return nil, ErrorList{{Line: next.Line, Reason: "a second YAML document: a policy file is one document; nothing after the first would be applied"}}
	}
	p := &parser{}
	f := p.file(&doc)
	if read != nil {
		if err := p.checkMaxAges(read); err != nil {
			return nil, err
		}
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return f, nil
}

// yamlError turns the YAML decoder's message ("yaml: line 3: ...") into an Error.
func yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return &Error{Line: line, Reason: "not valid YAML: " + msg}
}

type parser struct {
	errs ErrorList
	// maxAges are the max_age and memory_max_age values of the right shape, which ParseChecked
	// reads once parsed.
	maxAges []maxAge
}

// maxAge is a max_age or memory_max_age value of the file: the node it is at, its key and the
// policy it belongs to.
type maxAge struct {
	node *yaml.Node
	key  string
	who  string
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{Line: line, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) file(doc *yaml.Node) *File {
	f := &File{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return f // an empty file: no policies at all
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.fail(root, "want a mapping with the keys default and characters")
		return f
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if prev, dup := seen[k.Value]; dup {
			what := k.Value
			if k.Value == "default" {
				what = "default policy"
			}
			p.fail(k, "a second %s (the first is on line %d); there can be one", what, prev)
			continue
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "default":
			e := p.entry(v, "")
			if e != nil {
				e.Line = k.Line
				f.Default = e
			}
		case "characters":
			f.Characters = p.characters(v)
		default:
			p.fail(k, "unknown key %q: want default or characters", k.Value)
		}
	}
	return f
}

func (p *parser) characters(n *yaml.Node) []Entry {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "characters: want a mapping from character ID to its policy")
		return nil
	}
	var out []Entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.fail(k, "a character ID must be a string")
			continue
		}
		id := k.Value
		if strings.TrimSpace(id) == "" {
			p.fail(k, "a character ID must not be blank")
			continue
		}
		if prev, dup := seen[id]; dup {
			p.fail(k, "character %q appears twice (first on line %d)", id, prev)
			continue
		}
		seen[id] = k.Line
		if e := p.entry(v, id); e != nil {
			e.Line = k.Line
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CharacterID < out[j].CharacterID })
	return out
}

func (p *parser) entry(n *yaml.Node, character string) *Entry {
	who := "the default policy"
	if character != "" {
		who = fmt.Sprintf("character %q", character)
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s: want a mapping with max_age, memory_max_age, enabled and note", who)
		return nil
	}
	e := &Entry{CharacterID: character, Enabled: true}
	before := len(p.errs)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.fail(k, "%s: %s appears twice", who, k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "max_age":
			if !p.interval(v, k.Value, who, "") {
				continue
			}
			e.MaxAge, e.MaxAgeLine = v.Value, v.Line
		case "memory_max_age":
			if !p.interval(v, k.Value, who, "; leave memory_max_age out to keep memory as long as Convai keeps it") {
				continue
			}
			e.MemoryMaxAge, e.MemoryMaxAgeLine = v.Value, v.Line
		case "enabled":
			var b bool
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
				p.fail(v, "%s: enabled must be true or false, not %q", who, v.Value)
				continue
			}
			e.Enabled = b
		case "note":
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				p.fail(v, "%s: note must be text", who)
				continue
			}
			e.Note = v.Value
		default:
			p.fail(k, "%s: unknown key %q: want max_age, memory_max_age, enabled or note", who, k.Value)
		}
	}
	if !seen["max_age"] {
		p.fail(n, "%s: max_age is missing", who)
	}
	if len(p.errs) > before {
		return nil
	}
	return e
}

// interval checks the shape of v, the value of key (max_age or memory_max_age), and keeps it to
// be read: false, with the mistake noted, when it is not a text with a unit. hint ends the
// message of a value that is not text.
func (p *parser) interval(v *yaml.Node, key, who, hint string) bool {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || strings.TrimSpace(v.Value) == "" {
		p.fail(v, "%s: %s must be an interval such as '30 days'%s", who, key, hint)
		return false
	}
	if v.Tag == "!!int" || v.Tag == "!!float" || bareNumber.MatchString(v.Value) {
		p.fail(v, "%s: %s %s has no unit: PostgreSQL would read it as seconds; write e.g. '%s days'",
			who, key, v.Value, strings.TrimSpace(v.Value))
		return false
	}
	p.maxAges = append(p.maxAges, maxAge{node: v, key: key, who: who})
	return true
}

// bareNumber is a max_age without a unit, which PostgreSQL reads as seconds.
var bareNumber = regexp.MustCompile(`^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$`)

// checkMaxAges reads every max_age and memory_max_age of the file with one call of read, each distinct text once,
// and adds a mistake at the line of each value that is wrong. An error is read's.
func (p *parser) checkMaxAges(read ReadIntervals) error {
	if len(p.maxAges) == 0 {
		return nil
	}
	var texts []string
	seen := map[string]bool{}
	for _, m := range p.maxAges {
		if !seen[m.node.Value] {
			seen[m.node.Value] = true
			texts = append(texts, m.node.Value)
		}
	}
	readings, err := read(texts)
	if err != nil {
		return err
	}
	for _, m := range p.maxAges {
		r, ok := readings[m.node.Value]
		if !ok {
			return fmt.Errorf("policyfile: no reading of %s %q", m.key, m.node.Value)
		}
		if reason := maxAgeMistake(m.key, m.node.Value, r); reason != "" {
			p.fail(m.node, "%s: %s", m.who, reason)
		}
	}
	return nil
}

// maxAgeMistake says what is wrong with text, the value of key (max_age or memory_max_age),
// which PostgreSQL read as r, with a hint; "" when nothing is.
func maxAgeMistake(key, text string, r Reading) string {
	kept := "sessions"
	if key == "memory_max_age" {
		kept = "memory"
	}
	if r.Invalid != "" {
		return fmt.Sprintf("%s %q is not an interval PostgreSQL reads (%s); write e.g. '30 days'", key, text, r.Invalid)
	}
	switch policy.CheckMaxAge(r.Interval) {
	case policy.MaxAgeNotPositive:
		return fmt.Sprintf("%s '%s' is not positive: a policy keeps %s for at least one hour; write e.g. '30 days'", key, r.Text, kept)
	case policy.MaxAgeUnderMin:
		return fmt.Sprintf("%s '%s' is under one hour (%q): a policy keeps %s for at least one hour; "+
			"write a longer time, e.g. '1 hour' or '30 days'", key, r.Text, text, kept)
	case policy.MaxAgeOverMax:
		return fmt.Sprintf("%s '%s' is over 200 years, the longest a policy keeps %s", key, r.Text, kept)
	case policy.MaxAgeNegativePart:
		return fmt.Sprintf("%s '%s' has a negative part: write each part positive, e.g. '28 days' for '1 mon -2 days'", key, r.Text)
	}
	return ""
}

// Write writes f as a policy file that Parse reads back to the same policies.
func Write(w io.Writer, f *File, header string) error {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(&b, "# %s\n", l)
		}
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	if f.Default != nil {
		root.Content = append(root.Content, str("default"), entryNode(*f.Default))
	}
	chars := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range f.Characters {
		chars.Content = append(chars.Content, str(e.CharacterID), entryNode(e))
	}
	root.Content = append(root.Content, str("characters"), chars)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func entryNode(e Entry) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	n.Content = append(n.Content, str("max_age"), str(e.MaxAge))
	if e.MemoryMaxAge != "" {
		n.Content = append(n.Content, str("memory_max_age"), str(e.MemoryMaxAge))
	}
	n.Content = append(n.Content, str("enabled"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(e.Enabled)})
	n.Content = append(n.Content, str("note"), str(e.Note))
	return n
}
