package k8s

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docCommand is one simple command of the docs: from a line of a fenced sh block, from an inline
// code span that is a kubectl command (isKubectlSpan), or from a manifest's comment.
type docCommand struct {
	file string
	// line is where the command's snippet starts (1-based).
	line int
	// snippet numbers the snippets of a file: the commands of one pipeline or block share it.
	snippet int
	// words are the command's words with the quotes removed; $VAR and $(...) are kept as written.
	words []string
}

func (c docCommand) String() string {
	return fmt.Sprintf("%s:%d: %s", c.file, c.line, strings.Join(c.words, " "))
}

// docSection is a heading and the lines under it, up to the next heading of the same or a higher
// level.
type docSection struct {
	title      string
	level      int
	start, end int // 1-based lines, end exclusive
	text       string
}

// markdownDoc is a Markdown file read for what it tells a user to run.
type markdownDoc struct {
	path     string
	sections []docSection
	commands []docCommand
}

var (
	headingRE = regexp.MustCompile(`^(#{1,6}) (.+)$`)
	fenceRE   = regexp.MustCompile("^\\s*```(\\w*)")
	spanRE    = regexp.MustCompile("`([^`]+)`")
)

// readMarkdown reads path: its headings, and the commands of its sh blocks and of its inline
// code spans that are kubectl commands.
func readMarkdown(t *testing.T, path string) markdownDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	d := markdownDoc{path: path}
	var open []int // indexes into d.sections of the headings still open
	snippet := 0
	addSnippet := func(line int, text string) {
		cmds, err := shellCommands(text)
		require.NoError(t, err, "%s:%d", path, line)
		snippet++
		for _, words := range cmds {
			d.commands = append(d.commands, docCommand{file: path, line: line, snippet: snippet, words: words})
		}
	}
	var paragraph []string
	paragraphStart := 0
	flushParagraph := func() {
		for _, m := range spanRE.FindAllStringSubmatch(strings.Join(paragraph, " "), -1) {
			if isKubectlSpan(m[1]) {
				addSnippet(paragraphStart, m[1])
			}
		}
		paragraph = nil
	}
	for i := 0; i < len(lines); i++ {
		n := i + 1
		if m := fenceRE.FindStringSubmatch(lines[i]); m != nil {
			flushParagraph()
			lang := m[1]
			var block []int
			for i++; i < len(lines) && !fenceRE.MatchString(lines[i]); i++ {
				block = append(block, i)
			}
			require.Less(t, i, len(lines), "%s:%d: unclosed code block", path, n)
			if lang != "sh" && lang != "bash" {
				continue
			}
			// One snippet per command line, with its continuation lines.
			for j := 0; j < len(block); j++ {
				start := block[j] + 1
				text := lines[block[j]]
				for strings.HasSuffix(text, "\\") && j+1 < len(block) {
					j++
					text = strings.TrimSuffix(text, "\\") + " " + lines[block[j]]
				}
				addSnippet(start, text)
			}
			continue
		}
		if m := headingRE.FindStringSubmatch(lines[i]); m != nil {
			flushParagraph()
			level := len(m[1])
			for len(open) > 0 && d.sections[open[len(open)-1]].level >= level {
				d.sections[open[len(open)-1]].end = n
				open = open[:len(open)-1]
			}
			open = append(open, len(d.sections))
			d.sections = append(d.sections, docSection{title: m[2], level: level, start: n})
			continue
		}
		if strings.TrimSpace(lines[i]) == "" {
			flushParagraph()
			continue
		}
		if paragraph == nil {
			paragraphStart = n
		}
		paragraph = append(paragraph, lines[i])
	}
	flushParagraph()
	for _, s := range open {
		d.sections[s].end = len(lines) + 1
	}
	for i, s := range d.sections {
		d.sections[i].text = strings.Join(lines[s.start-1:s.end-1], "\n")
	}
	return d
}

// section returns the section with the title.
func (d markdownDoc) section(t *testing.T, title string) docSection {
	t.Helper()
	for _, s := range d.sections {
		if s.title == title {
			return s
		}
	}
	require.Failf(t, "no such section", "%s has no heading %q", d.path, title)
	return docSection{}
}

// sectionOf returns the innermost section that holds line.
func (d markdownDoc) sectionOf(line int) docSection {
	var in docSection
	for _, s := range d.sections {
		if s.start <= line && line < s.end && s.level >= in.level {
			in = s
		}
	}
	return in
}

// within returns the commands of d inside s, in order.
func (d markdownDoc) within(s docSection) []docCommand {
	var out []docCommand
	for _, c := range d.commands {
		if s.start <= c.line && c.line < s.end {
			out = append(out, c)
		}
	}
	return out
}

// isKubectlSpan reports whether an inline code span is a kubectl command to run: "kubectl" and
// at least two arguments. `kubectl logs` alone names a command in prose.
func isKubectlSpan(span string) bool {
	f := strings.Fields(span)
	return len(f) >= 3 && f[0] == "kubectl"
}

// yamlCommentCommands reads the kubectl commands a manifest's comments show: comment lines
// indented under the "#" by two spaces or more that hold one, and inline code spans that are one.
func yamlCommentCommands(t *testing.T, path string) []docCommand {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []docCommand
	for i, line := range strings.Split(string(b), "\n") {
		text, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		if !ok {
			continue
		}
		var snippets []string
		if strings.HasPrefix(text, "   ") && strings.Contains(text, "kubectl ") {
			snippets = append(snippets, text)
		} else {
			for _, m := range spanRE.FindAllStringSubmatch(text, -1) {
				if isKubectlSpan(m[1]) {
					snippets = append(snippets, m[1])
				}
			}
		}
		for _, s := range snippets {
			cmds, err := shellCommands(s)
			require.NoError(t, err, "%s:%d", path, i+1)
			for _, words := range cmds {
				out = append(out, docCommand{file: path, line: i + 1, snippet: i + 1, words: words})
			}
		}
	}
	return out
}

// shellCommands splits a line of POSIX shell into its simple commands: at |, ||, &&, ;, & and
// parentheses, and into the commands inside each $(...) too, which come before the command that
// holds them. Quotes are removed; $VAR and $(...) stay in their word as written. It knows only
// what the docs use: no here-documents, no backquotes.
func shellCommands(s string) ([][]string, error) {
	p := shellParser{s: s}
	if err := p.parse(false); err != nil {
		return nil, err
	}
	return p.cmds, nil
}

type shellParser struct {
	s    string
	i    int
	cmds [][]string
}

// parse reads commands up to the end of s, or with inSubst up to the ")" that closes a $(.
func (p *shellParser) parse(inSubst bool) error {
	var cmd []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			cmd = append(cmd, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(cmd) > 0 {
			p.cmds = append(p.cmds, cmd)
			cmd = nil
		}
	}
	depth := 0 // open subshell parentheses
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ' ' || c == '\t':
			endWord()
			p.i++
		case c == '#' && !inWord:
			p.i = len(p.s)
		case c == '|' || c == '&' || c == ';':
			endCmd()
			p.i++
		case c == '(':
			endCmd()
			depth++
			p.i++
		case c == ')':
			endCmd()
			p.i++
			if depth == 0 {
				if inSubst {
					return nil
				}
				return errors.New("unmatched )")
			}
			depth--
		case c == '\\':
			if p.i+1 < len(p.s) {
				word.WriteByte(p.s[p.i+1])
			}
			inWord = true
			p.i += 2
		case c == '\'':
			end := strings.IndexByte(p.s[p.i+1:], '\'')
			if end < 0 {
				return errors.New("unclosed '")
			}
			word.WriteString(p.s[p.i+1 : p.i+1+end])
			inWord = true
			p.i += end + 2
		case c == '"':
			inWord = true
			p.i++
			closed := false
			for p.i < len(p.s) && !closed {
				switch {
				case p.s[p.i] == '"':
					closed = true
					p.i++
				case p.s[p.i] == '\\' && p.i+1 < len(p.s):
					word.WriteByte(p.s[p.i+1])
					p.i += 2
				case strings.HasPrefix(p.s[p.i:], "$("):
					if err := p.subst(&word); err != nil {
						return err
					}
				default:
					word.WriteByte(p.s[p.i])
					p.i++
				}
			}
			if !closed {
				return errors.New(`unclosed "`)
			}
		case strings.HasPrefix(p.s[p.i:], "$("):
			inWord = true
			if err := p.subst(&word); err != nil {
				return err
			}
		default:
			word.WriteByte(c)
			inWord = true
			p.i++
		}
	}
	if inSubst {
		return errors.New("unclosed $(")
	}
	endCmd()
	return nil
}

// subst reads the $(...) at p.i: its commands go to p.cmds, its text to word.
func (p *shellParser) subst(word *strings.Builder) error {
	start := p.i
	p.i += 2
	if err := p.parse(true); err != nil {
		return err
	}
	word.WriteString(p.s[start:p.i])
	return nil
}

// kubectlArgs returns the arguments of a kubectl command, after any VAR=value assignments
// before it, and whether words is one.
func kubectlArgs(words []string) ([]string, bool) {
	for i, w := range words {
		if w == "kubectl" {
			return words[i+1:], true
		}
		if !strings.Contains(w, "=") {
			return nil, false
		}
	}
	return nil, false
}

// kubectlValued are the kubectl flags the docs use that take a value, when it is given as the
// next word rather than after "=".
var kubectlValued = []string{"-n", "--namespace", "-f", "--filename", "-k", "--kustomize", "-p", "--patch",
	"-o", "--output", "-c", "--containers", "-l", "--selector", "--timeout", "--for", "--from"}

// flagValues returns every value given to one of the flag names in args, as "-f x" or "-f=x".
func flagValues(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		for _, name := range names {
			if args[i] == name && i+1 < len(args) {
				out = append(out, args[i+1])
			} else if v, ok := strings.CutPrefix(args[i], name+"="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// positional returns the arguments of a kubectl command that are no flag and no flag's value.
func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-f" && isLogs(out):
			// kubectl logs -f is --follow.
		case slices.Contains(kubectlValued, args[i]):
			i++
		case strings.HasPrefix(args[i], "-"):
		default:
			out = append(out, args[i])
		}
	}
	return out
}

func isLogs(positional []string) bool { return len(positional) > 0 && positional[0] == "logs" }

// files returns the files and directories a kubectl command reads with -f and -k.
func (c docCommand) files() (files, kustomizations []string) {
	if c.is("logs") {
		return nil, c.flag("-k", "--kustomize")
	}
	return c.flag("-f", "--filename"), c.flag("-k", "--kustomize")
}

// is reports whether c is a kubectl command whose positional arguments start with want.
func (c docCommand) is(want ...string) bool {
	args, ok := kubectlArgs(c.words)
	if !ok {
		return false
	}
	pos := positional(args)
	return len(pos) >= len(want) && slices.Equal(pos[:len(want)], want)
}

// flag returns the values of the named flags of c (a kubectl command).
func (c docCommand) flag(names ...string) []string {
	args, _ := kubectlArgs(c.words)
	return flagValues(args, names...)
}

func TestShellCommands_SplitsWhatTheDocsWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want [][]string
	}{
		{"kubectl -n $NS apply -k k8s/base", [][]string{{"kubectl", "-n", "$NS", "apply", "-k", "k8s/base"}}},
		{"a | b -f - && c; d   # a comment", [][]string{{"a"}, {"b", "-f", "-"}, {"c"}, {"d"}}},
		{`IMAGE=$(kubectl get cronjob x -o jsonpath='{.spec}')`,
			[][]string{{"kubectl", "get", "cronjob", "x", "-o", "jsonpath={.spec}"}, {"IMAGE=$(kubectl get cronjob x -o jsonpath='{.spec}')"}}},
		{`sed "s|a:b|$IMAGE|" f.yaml | kubectl create -f -`, [][]string{{"sed", "s|a:b|$IMAGE|", "f.yaml"}, {"kubectl", "create", "-f", "-"}}},
		{"(cd k8s/$d && kustomize edit)", [][]string{{"cd", "k8s/$d"}, {"kustomize", "edit"}}},
		{`kubectl patch cj x -p '{"spec":{"suspend":false}}'`, [][]string{{"kubectl", "patch", "cj", "x", "-p", `{"spec":{"suspend":false}}`}}},
		{"job x-$(date +%s)", [][]string{{"date", "+%s"}, {"job", "x-$(date +%s)"}}},
		{`echo "#not a comment" a\ b`, [][]string{{"echo", "#not a comment", "a b"}}},
	} {
		got, err := shellCommands(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"echo 'x", `echo "x`, "echo $(date", "echo )"} {
		_, err := shellCommands(bad)
		require.Error(t, err, bad)
	}
}

func TestReadMarkdown_FindsSectionsAndCommands(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/doc.md"
	doc := "# Title\n\n## One\n\nRun `kubectl -n $NS get\njobs` or `make x`.\n\n```sh\nkubectl a \\\n  -f k8s/x | kubectl b\n```\n\n" +
		"```yaml\n# not a heading\nkubectl: no\n```\n\n### One.1\n\ntext\n\n## Two\n\n```sh\necho hi\n```\n"
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	d := readMarkdown(t, path)

	var titles []string
	for _, s := range d.sections {
		titles = append(titles, s.title)
	}
	require.Equal(t, []string{"Title", "One", "One.1", "Two"}, titles)
	one := d.section(t, "One")
	require.Equal(t, 3, one.start)
	require.Equal(t, 22, one.end, "One ends where Two starts")
	require.Contains(t, one.text, "text")
	require.NotContains(t, one.text, "echo hi")

	var got []string
	for _, c := range d.commands {
		got = append(got, fmt.Sprintf("%d/%d %s", c.line, c.snippet, strings.Join(c.words, " ")))
	}
	require.Equal(t, []string{
		"5/1 kubectl -n $NS get jobs",
		"9/2 kubectl a -f k8s/x",
		"9/2 kubectl b",
		"25/3 echo hi",
	}, got)
	require.Equal(t, "One", d.sectionOf(9).title)
	require.Equal(t, "Two", d.sectionOf(25).title)
	require.Len(t, d.within(one), 3)
	require.True(t, d.commands[1].is("a"))
	require.Equal(t, []string{"k8s/x"}, d.commands[1].flag("-f"))
}
