package main

import (
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/internal/secret"
)

// vault keeps what the process has read from secret files, so each file is read once, and the
// redactor built from every secret known so far. The zero vault is ready to use.
type vault struct {
	mu       sync.Mutex
	fileKey  string     // read from CONVAI_API_KEY_FILE, once a real run needed it
	dsn      fileSecret // read from DATABASE_URL_FILE
	srcDSN   fileSecret // read from SOURCE_DATABASE_URL_FILE
	known    string     // what redactor was built from: the variables and files read, joined
	redactor *secret.Redactor
}

// fileSecret is a secret read from a file named by a variable, with the name it was read from.
type fileSecret struct {
	file  string
	value string
	err   error
}

// read returns the secret in file, reading the file only when s was not read from it already.
func (v *vault) read(s *fileSecret, file string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.file != file {
		s.file = file
		s.value, s.err = secret.ReadFile(file)
	}
	return s.value, s.err
}

// databaseURL returns the connection string from DATABASE_URL or from the file named by
// DATABASE_URL_FILE (one of them, not both; a file is read with secret.ReadFile's limits). A
// string pgx cannot parse is a usage error that quotes none of it (checkDSN).
func (a *app) databaseURL() (string, error) {
	dsn, err := a.dsnVar("DATABASE_URL", &a.vault.dsn)
	if err == nil && dsn == "" {
		return "", usagef("DATABASE_URL is not set: give the PostgreSQL connection string, e.g. " +
			"postgres://retention@db:5432/app, or DATABASE_URL_FILE naming a file that holds it")
	}
	return dsn, err
}

// dsnVar returns the connection string from the variable name or from the file that name_FILE
// names (one of them, not both), the file read once into s; "" when neither is set. A string
// pgx cannot parse is a usage error that quotes none of it (checkDSN).
func (a *app) dsnVar(name string, s *fileSecret) (string, error) {
	dsn, file := strings.TrimSpace(a.getenv(name)), a.getenv(name+"_FILE")
	switch {
	case dsn != "" && file != "":
		return "", usagef("both %s and %s_FILE are set: keep one", name, name)
	case file != "":
		d, err := a.vault.read(s, file)
		if err != nil {
			return "", usagef("%s_FILE: %v", name, err)
		}
		if err := checkDSN(name+"_FILE: "+file, d); err != nil {
			return "", err
		}
		return d, nil
	case dsn == "":
		return "", nil
	}
	if err := checkDSN(name, dsn); err != nil {
		return "", err
	}
	return dsn, nil
}

// apiKey returns the key from CONVAI_API_KEY or the file named by CONVAI_API_KEY_FILE (one of
// them, not both). Surrounding white space, such as a file's final newline, is dropped. Only a
// real run calls it: a dry-run never reads the key.
func (a *app) apiKey() (string, error) {
	key, file := a.getenv("CONVAI_API_KEY"), a.getenv("CONVAI_API_KEY_FILE")
	switch {
	case key != "" && file != "":
		return "", usagef("both CONVAI_API_KEY and CONVAI_API_KEY_FILE are set: keep one")
	case file != "":
		k, err := secret.ReadFile(file)
		if err != nil {
			return "", usagef("CONVAI_API_KEY_FILE: %v", err)
		}
		a.vault.mu.Lock()
		a.vault.fileKey = k
		a.vault.mu.Unlock()
		return k, nil
	case strings.TrimSpace(key) == "":
		return "", usagef("no API key: set CONVAI_API_KEY, or CONVAI_API_KEY_FILE to a file holding it (a dry-run needs none)")
	}
	return strings.TrimSpace(key), nil
}

// secretKeys returns the API key, from the environment or from its file once read. It never
// reads the key file itself.
func (a *app) secretKeys() []string {
	var out []string
	if k := strings.TrimSpace(a.getenv("CONVAI_API_KEY")); k != "" {
		out = append(out, k)
	}
	a.vault.mu.Lock()
	if a.vault.fileKey != "" {
		out = append(out, a.vault.fileKey)
	}
	a.vault.mu.Unlock()
	return out
}

// secretValues returns the database passwords, from DATABASE_URL or DATABASE_URL_FILE and from
// SOURCE_DATABASE_URL or SOURCE_DATABASE_URL_FILE.
func (a *app) secretValues() []string {
	dsn := a.getenv("DATABASE_URL")
	if f := a.getenv("DATABASE_URL_FILE"); strings.TrimSpace(dsn) == "" && f != "" {
		dsn, _ = a.vault.read(&a.vault.dsn, f)
	}
	src := a.getenv("SOURCE_DATABASE_URL")
	if f := a.getenv("SOURCE_DATABASE_URL_FILE"); strings.TrimSpace(src) == "" && f != "" {
		src, _ = a.vault.read(&a.vault.srcDSN, f)
	}
	return append(dsnPasswords(dsn), dsnPasswords(src)...)
}

// redactor returns a redactor for every secret known now: the key by any 8 bytes of it, the
// password whole (a piece of a password may be an ordinary word). It is called for every log record,
// so it is rebuilt only when what the secrets come from has changed.
func (a *app) redactor() *secret.Redactor {
	v := &a.vault
	v.mu.Lock()
	sources := strings.Join([]string{a.getenv("CONVAI_API_KEY"), v.fileKey, a.getenv("DATABASE_URL"),
		a.getenv("DATABASE_URL_FILE"), v.dsn.value, a.getenv("SOURCE_DATABASE_URL"), a.getenv("SOURCE_DATABASE_URL_FILE"), v.srcDSN.value}, "\x00")
	if v.redactor != nil && v.known == sources {
		r := v.redactor
		v.mu.Unlock()
		return r
	}
	v.mu.Unlock()
	r := secret.New(a.secretKeys(), a.secretValues())
	v.mu.Lock()
	v.known, v.redactor = sources, r
	v.mu.Unlock()
	return r
}

// passwordKeyword finds the password of a keyword/value connection string that pgconn could
// not parse (so that its error cannot show it either).
var passwordKeyword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// dsnPasswords returns the password of a connection string, URL or keyword/value, however
// badly formed the rest of it is.
func dsnPasswords(dsn string) []string {
	if strings.TrimSpace(dsn) == "" {
		return nil
	}
	var out []string
	if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
		out = append(out, cfg.Password)
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	for _, m := range passwordKeyword.FindAllStringSubmatch(dsn, -1) {
		p := strings.Trim(m[1], "'")
		out = append(out, p, strings.ReplaceAll(p, `\'`, `'`))
	}
	return out
}

// urlSecrets returns the password of a URL.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	p, ok := u.User.Password()
	if !ok {
		return nil
	}
	return []string{p}
}

// safeURL returns what of a URL may be shown and recorded: its scheme, host and port. User
// info, query and fragment can carry credentials, and so can the path (a key pasted into it,
// as in http://proxy/sk-live-...), so a path other than "/" shows as "/…".
func safeURL(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil {
		return "[unparsable]"
	}
	out := (&url.URL{Scheme: p.Scheme, Host: p.Host}).String()
	if (p.Path != "" && p.Path != "/") || p.Opaque != "" {
		out += "/…"
	}
	return out
}

// redactSettings returns settings with every string value passed through r: the last guard on
// what a run row records.
func redactSettings(settings map[string]any, r *secret.Redactor) map[string]any {
	for k, v := range settings {
		if s, ok := v.(string); ok {
			settings[k] = r.Redact(s)
		}
	}
	return settings
}
