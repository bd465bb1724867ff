package main

import (
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// A mistyped flag is named with two dashes and the nearest flag is suggested; exit 2, before
// anything is read.
func TestUnknownFlagSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--dry-rnu"}, "run: unknown flag --dry-rnu; did you mean --dry-run? (retention run --help lists the flags)"},
		{[]string{"run", "--concurency", "4"}, "did you mean --concurrency?"},
		{[]string{"run", "--max-del", "4"}, "did you mean --max-deletions?"},
		{[]string{"sync", "--full"}, "did you mean --full-sync?"},
		{[]string{"run", "--zzzzzz"}, "run: unknown flag --zzzzzz (retention run --help lists the flags)"},
		{[]string{"run", "--rate"}, "flag needs an argument: --rate"},
		{[]string{"run", "--rate", "fast"}, `invalid value "fast" for flag --rate`},
	} {
		r := run(t, env, tt.args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", tt.args, r)
		require.Contains(t, r.stderr, tt.want, "%v", tt.args)
		require.NotContains(t, r.stderr, "flag provided but not defined", "%v", tt.args)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"dry-rnu", "dry-run", 2}, {"concurency", "concurrency", 1}, {"", "ab", 2}, {"kitten", "sitting", 3}} {
		require.Equal(t, tt.want, editDistance(tt.a, tt.b), "%q %q", tt.a, tt.b)
	}
}

// Every command, and every subcommand, has its own help: "retention CMD --help", "CMD -h" and
// "retention help CMD" exit 0 and show each flag of the command's option table, the
// environment and the exit codes; for a command with subcommands, its help shows each
// subcommand's flags.
func TestHelpPerCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	whole := run(t, env, "help")
	require.Equal(t, exitcode.OK, whole.code)
	var o struct {
		run      runOptions
		schedule scheduleOptions
		sync     syncOptions
		report   reportOptions
		plan     planOptions
		budget   int64
		verify   verifyOptions
		discover discoverOptions
		erase    eraseOptions
		apply    applyOptions
		export   string
		level    string
	}
	flags := map[string]*flagSet{
		"run":           runFlags(&o.run),
		"schedule":      scheduleFlags(&o.schedule),
		"migrate":       migrateOptions(&o.level).flagSet("migrate"),
		"sync":          o.sync.table().flagSet("sync"),
		"report":        reportFlags(&o.report),
		"plan":          planFlags(&o.plan, &o.budget),
		"verify":        verifyFlags(&o.verify),
		"discover":      discoverFlags(&o.discover),
		"erase":         eraseFlags(&o.erase),
		"version":       newFlagSet("version"),
		"policy export": exportFlags(&o.export),
		"policy apply":  applyFlags(&o.apply),
		"audit verify":  (&auditVerifyOptions{}).table().flagSet("audit verify"),
		"audit prove":   (&auditProveOptions{}).table().flagSet("audit prove"),
		"audit check":   (&auditCheckOptions{}).table().flagSet("audit check"),
		"audit keygen":  (&auditKeygenOptions{}).table().flagSet("audit keygen"),
	}
	for _, c := range (&app{}).program().Commands {
		_, ok := flags[c.Name]
		require.True(t, ok || c.Name == "policy" || c.Name == "audit", "command %s has no case here", c.Name)
	}
	shows := func(t *testing.T, what, text string, fs *flagSet) {
		t.Helper()
		require.NotEqual(t, whole.stdout, text, "%s is the command's own", what)
		require.Contains(t, text, "environment:", what)
		require.Contains(t, text, "exit codes:", what)
		require.Contains(t, text, "143  terminated by SIGTERM", what)
		fs.VisitAll(func(f *flag.Flag) {
			require.Regexp(t, `(?m)^  --`+regexp.QuoteMeta(f.Name)+`\b`, text, "%s shows --%s", what, f.Name)
		})
	}
	for path, fs := range flags {
		cmd, _, isSub := strings.Cut(path, " ")
		help := run(t, env, "help", cmd)
		require.Equal(t, exitcode.OK, help.code, "help %s: %s", cmd, help)
		shows(t, "help "+cmd, help.stdout, fs)
		for _, h := range []string{"--help", "-h"} {
			own := run(t, env, append(strings.Fields(path), h)...)
			require.Equal(t, exitcode.OK, own.code, "%s %s: %s", path, h, own)
			require.Empty(t, own.stderr, "%s %s", path, h)
			shows(t, path+" "+h, own.stdout, fs)
			if !isSub {
				require.Equal(t, help.stdout, own.stdout, "help %s and %s %s say the same", cmd, cmd, h)
			}
		}
	}
	for _, cmd := range []string{"policy", "audit"} {
		help := run(t, env, "help", cmd)
		for _, h := range []string{"--help", "-h", "help"} {
			own := run(t, env, cmd, h)
			require.Equal(t, exitcode.OK, own.code, "%s %s: %s", cmd, h, own)
			require.Equal(t, help.stdout, own.stdout, "help %s and %s %s say the same", cmd, cmd, h)
		}
	}
	r := run(t, env, "help", "nope")
	require.Equal(t, exitcode.Usage, r.code)
}

// The run summary's JSON is snake_case throughout, and a time the run does not know is absent,
// never year 1.
func TestSummaryJSONIsSnakeCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c-none', '1 day')`)
	b.exec(t, `INSERT INTO retention.holds (character_id, reason) VALUES ('c-none', 'kept')`)
	r := b.run(t, "run", "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, `"shard": {`)
	require.Contains(t, r.stdout, `"index": 0`)
	require.Contains(t, r.stdout, `"count": 1`)
	require.NotContains(t, r.stdout, `"Index"`)
	require.NotContains(t, r.stdout, "0001-01-01")
}
