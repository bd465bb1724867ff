package main

import (
	"context"
	"log/slog"
	"net/url"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// apiFlags are the flags verify and discover share beside their own: the summary's format, the
// log level, --allow-insecure-url and the settings of the API calls.
type apiFlags struct {
	output   string
	logLevel string
	cfg      job.Config
	// allowInsecureURL is --allow-insecure-url.
	allowInsecureURL bool
}

// table is the flag table of a command that calls the API: own (what it looks at), --format
// and --log-level, then more, then --allow-insecure-url and the API's settings. --format
// (--output) has no variable here, as before.
func (f *apiFlags) table(own options, more ...option) options {
	return slices.Concat(own, options{outputOption(&f.output).withEnv(noEnv), logLevelOption(&f.logLevel)}, more,
		options{allowInsecureURLOption(&f.allowInsecureURL)}, apiOptions(&f.cfg))
}

// allowInsecureURLOption is --allow-insecure-url, an option of every command that calls the API.
func allowInsecureURLOption(v *bool) option {
	return option{name: "allow-insecure-url", value: v, def: false, setting: "allow_insecure_url",
		help: "let CONVAI_API_URL be plain http:// to a host other than this machine (refused without it: the API key " +
			"would cross the network unencrypted); only for a proxy on a network you trust"}
}

// newClient returns the Convai client for key at baseURL (CONVAI_API_URL), its long-term memory
// endpoints at CONVAI_MEMORY_API_URL (default baseURL; nothing calls them unless asked), keeping
// every secret read so far out of its errors. A plain http:// URL to a host other than this
// machine is a usage error unless allowInsecure, and then a loud warning.
func (a *app) newClient(log *slog.Logger, baseURL, key string, allowInsecure bool) (*convai.Client, error) {
	memoryURL := a.getenv("CONVAI_MEMORY_API_URL")
	type apiURL struct{ env, url string }
	var insecure []apiURL
	for _, u := range []apiURL{{"CONVAI_API_URL", baseURL}, {"CONVAI_MEMORY_API_URL", memoryURL}} {
		host, bad := insecureAPIURL(u.url)
		if !bad {
			continue
		}
		if !allowInsecure {
			return nil, usagef("%s %s is plain http:// to %s, a host other than this machine: the API key would "+
				"cross the network unencrypted. Use https://, or pass --allow-insecure-url (RETENTION_ALLOW_INSECURE_URL=true) "+
				"for a proxy on a network you trust", u.env, safeURL(u.url), host)
		}
		insecure = append(insecure, u)
	}
	c, err := convai.New(convai.Config{BaseURL: baseURL, MemoryBaseURL: memoryURL, APIKey: key, Secrets: a.secretValues(),
		UserAgent: "convai-retention/" + buildVersion()})
	if err != nil {
		return nil, err
	}
	for _, u := range insecure {
		log.Warn("INSECURE API CONNECTION: "+u.env+" is plain http:// to a host other than this machine "+
			"(allowed by --allow-insecure-url); the API key and the session IDs can be read or changed on the way",
			"api_url", safeURL(u.url))
	}
	return c, nil
}

// insecureAPIURL reports whether raw is a plain http:// URL to a host other than this machine
// (loopback addresses and localhost are this machine), and returns that host. A URL that does
// not parse is not judged here: convai.New refuses it.
func insecureAPIURL(raw string) (host string, insecure bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return "", false
	}
	host = u.Hostname()
	return host, host != "" && !localHost(host)
}

// apiStore is what verify and discover need beside their flags: the logger, the API client, and
// a store on the source rel. Close releases the client and the store.
type apiStore struct {
	log    *slog.Logger
	client *convai.Client
	pool   *pgxpool.Pool
	store  *source.Store
}

// openAPIStore makes the logger of --log-level, gives it to the job's settings and checks them,
// then reads the key and the database URL, and connects (bounded, as a run's setup is).
func (a *app) openAPIStore(ctx context.Context, f *apiFlags, rel source.Relation) (*apiStore, error) {
	log, err := newLogger(a.stderr, logLevel(f.logLevel, a.getenv), a.redactor)
	if err != nil {
		return nil, err
	}
	f.cfg.Logger = log
	if err := f.cfg.Validate(); err != nil {
		return nil, err
	}
	dsn, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	key, err := a.apiKey()
	if err != nil {
		return nil, err
	}
	e := &apiStore{log: log}
	if e.client, err = a.newClient(log, a.getenv("CONVAI_API_URL"), key, f.allowInsecureURL); err != nil {
		return nil, err
	}
	if e.pool, err = connectCurrent(ctx, dsn, 4); err != nil {
		e.close()
		return nil, err
	}
	src, err := inspect(ctx, e.pool, rel)
	if err != nil {
		e.close()
		return nil, err
	}
	e.store = source.New(e.pool, src, source.Config{})
	return e, nil
}

// inspect is source.Inspect of rel on pool, bounded by setupTimeout as the rest of a command's
// setup is.
func inspect(ctx context.Context, pool *pgxpool.Pool, rel source.Relation) (*source.Source, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	return source.Inspect(ctx, pool, rel)
}

func (e *apiStore) close() {
	if e.pool != nil {
		e.pool.Close()
	}
	e.client.CloseIdleConnections()
}
