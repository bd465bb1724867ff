package convai

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/convai-retention/retention/internal/secret"
)

// Defaults for the Config fields.
const (
	DefaultBaseURL   = "https://api.convai.com"
	DefaultUserAgent = "convai-retention"
)

// redactedMark replaces the API key wherever it would otherwise be printed.
const redactedMark = "[redacted]"

// Config configures a Client. The zero value of each field except APIKey means its default.
//
// A Config never prints its APIKey: fmt (every verb, %+v and %#v included), slog and
// encoding/json all show "[redacted]" instead.
type Config struct {
	// BaseURL is the API root, default DefaultBaseURL. It must be an http or https URL with a
	// host and no user info, query or fragment; a path is kept as a prefix.
	BaseURL string
	// MemoryBaseURL is the root of the long-term memory endpoints (/memory/..., and
	// /user/end-users/delete), which Convai may serve from another host; default BaseURL. The
	// same rules as BaseURL apply.
	MemoryBaseURL string
	// APIKey is sent in the CONVAI-API-KEY header. Required; printable ASCII without spaces.
	APIKey string
	// HTTPClient sends the requests. The default has dial, TLS handshake and response header
	// timeouts and no overall Timeout: bound each call with its ctx. A client given here is
	// copied, and the copy never follows redirects.
	HTTPClient *http.Client
	// UserAgent is sent in the User-Agent header, default DefaultUserAgent.
	UserAgent string
	// Now is the clock used to turn a Retry-After date into a duration, default time.Now.
	Now func() time.Time
	// Secrets are further values (such as the database password) kept out of every Result:
	// found whole, in every form secret.Redactor finds (the API key also by any 8 bytes of it).
	// Default none. Never printed.
	Secrets []string
}

// String returns the fields of c with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("{BaseURL:%s MemoryBaseURL:%s APIKey:%s HTTPClient:%s UserAgent:%s}",
		c.BaseURL, c.MemoryBaseURL, c.redactedKey(), c.httpClientName(), c.UserAgent)
}

// GoString returns a Go-syntax representation of c with the API key redacted.
func (c Config) GoString() string {
	return fmt.Sprintf("convai.Config{BaseURL:%q, MemoryBaseURL:%q, APIKey:%q, HTTPClient:%s, UserAgent:%q}",
		c.BaseURL, c.MemoryBaseURL, c.redactedKey(), c.httpClientName(), c.UserAgent)
}

// Format implements fmt.Formatter so that no verb or flag prints the API key: %#v uses
// GoString, %q quotes String, every other verb prints String.
func (c Config) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, c.GoString())
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(c.String()))
	default:
		fmt.Fprint(f, c.String())
	}
}

// LogValue implements slog.LogValuer with the API key redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("memory_base_url", c.MemoryBaseURL),
		slog.String("api_key", c.redactedKey()),
		slog.String("http_client", c.httpClientName()),
		slog.String("user_agent", c.UserAgent),
	)
}

// MarshalJSON implements json.Marshaler with the API key redacted.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseURL       string `json:"base_url"`
		MemoryBaseURL string `json:"memory_base_url,omitempty"`
		APIKey        string `json:"api_key"`
		HTTPClient    string `json:"http_client"`
		UserAgent     string `json:"user_agent"`
	}{c.BaseURL, c.MemoryBaseURL, c.redactedKey(), c.httpClientName(), c.UserAgent})
}

func (c Config) redactedKey() string {
	if c.APIKey == "" {
		return ""
	}
	return redactedMark
}

func (c Config) httpClientName() string {
	if c.HTTPClient == nil {
		return "default"
	}
	return "custom"
}

// The paths of the endpoints, appended to the BaseURL's path.
const (
	deletePath  = "/character/chatHistory/delete"
	listPath    = "/character/chatHistory/list"
	detailsPath = "/character/chatHistory/details"
	// The long-term memory endpoints, under Config.MemoryBaseURL.
	memoryListPath      = "/memory/list"
	memoryDeletePath    = "/memory/delete"
	memoryDeleteAllPath = "/memory/delete-all"
	endUserDeletePath   = "/user/end-users/delete"
)

// endpoints are the URLs a Client sends to.
type endpoints struct {
	delete, list, details                                    string
	memoryList, memoryDelete, memoryDeleteAll, endUserDelete string
}

// endpoint validates base and memoryBase (BaseURL and MemoryBaseURL; "" for base) and returns
// the URLs of the endpoints under them.
func endpoint(base, memoryBase string) (endpoints, error) {
	u, err := baseURL("BaseURL", base)
	if err != nil {
		return endpoints{}, err
	}
	m := u
	if memoryBase != "" {
		if m, err = baseURL("MemoryBaseURL", memoryBase); err != nil {
			return endpoints{}, err
		}
	}
	return endpoints{
		delete:          u.JoinPath(deletePath).String(),
		list:            u.JoinPath(listPath).String(),
		details:         u.JoinPath(detailsPath).String(),
		memoryList:      m.JoinPath(memoryListPath).String(),
		memoryDelete:    m.JoinPath(memoryDeletePath).String(),
		memoryDeleteAll: m.JoinPath(memoryDeleteAllPath).String(),
		endUserDelete:   m.JoinPath(endUserDeletePath).String(),
	}, nil
}

// baseURL validates base, the value of the Config field named field.
func baseURL(field, base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		shown := base
		if strings.Contains(base, "@") { // may hold a password
			shown = ""
		}
		return nil, &ConfigError{Field: field, Value: shown, Reason: "not a URL"}
	}
	shown := u.String()
	if u.User != nil { // a user name can be a secret too, not only a password
		masked := *u
		masked.User = url.User("xxxxx")
		shown = masked.String()
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &ConfigError{Field: field, Value: shown, Reason: "must start with http:// or https://"}
	case u.Host == "" || u.Opaque != "":
		return nil, &ConfigError{Field: field, Value: shown, Reason: "must have a host, e.g. https://api.convai.com"}
	case u.User != nil:
		return nil, &ConfigError{Field: field, Value: shown, Reason: "must not carry user info; the key goes in APIKey"}
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, &ConfigError{Field: field, Reason: "must not have a query or fragment"}
	}
	return u, nil
}

// checkHeaderValue reports whether v is printable ASCII, spaces allowed only if spaces is set.
func checkHeaderValue(v string, spaces bool) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' || c > '~' || (c == ' ' && !spaces) {
			return false
		}
	}
	return true
}

// defaultHTTPClient returns a client with transport-level timeouts and no overall Timeout.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t}
}

// noRedirect keeps the 3xx response instead of following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// fill validates cfg and fills its defaults.
func fill(cfg Config) (Config, endpoints, error) {
	cfg.BaseURL = cmp.Or(cfg.BaseURL, DefaultBaseURL)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, DefaultUserAgent)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ep, err := endpoint(cfg.BaseURL, cfg.MemoryBaseURL)
	if ce, ok := err.(*ConfigError); ok {
		// The key pasted into the URL by mistake, in any form.
		ce.Value = scrub(ce.Value, secret.New([]string{cfg.APIKey}, cfg.Secrets))
		return cfg, endpoints{}, ce
	}
	switch {
	case cfg.APIKey == "":
		return cfg, endpoints{}, &ConfigError{Field: "APIKey", Reason: "required; set the Convai API key"}
	case !checkHeaderValue(cfg.APIKey, false):
		return cfg, endpoints{}, &ConfigError{Field: "APIKey", Reason: "must be printable ASCII without spaces (check for a trailing newline)"}
	case !checkHeaderValue(cfg.UserAgent, true):
		return cfg, endpoints{}, &ConfigError{Field: "UserAgent", Value: cfg.UserAgent, Reason: "must be printable ASCII"}
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc = *defaultHTTPClient()
	}
	hc.CheckRedirect = noRedirect
	cfg.HTTPClient = &hc
	return cfg, ep, nil
}
