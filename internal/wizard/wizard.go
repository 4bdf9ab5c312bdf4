// Package wizard serves the "Connect Azure Storage" wizard as a page on the local stack:
// plain HTML, CSS and one script, embedded in the binary, that drive the public API
// exactly as the platform's frontend would (same origin, bearer token, organization
// header). Beside the wizard, a customer panel plays the customer's side of the onboarding
// (install the service principal, grant a role, create the container, switch the firewall)
// through the local stand-in's control endpoints, which the page reaches through a
// same-origin proxy, so that nothing in the browser has to trust the local certificate or
// cross an origin. The admin-consent link is proxied to the stand-in's authority the same
// way.
//
// The page is a local-stack tool behind a local-only setting (config.KeyLocalWizard):
// Azure mode refuses it, and the API's route table and description do not include it.
// docs/WIZARD.md describes the page, its routes and its tests.
package wizard

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// Prefix is the path the page is served under.
const Prefix = "/wizard/"

// The page's own routes under Prefix: the customer panel's proxy to the stand-in's control
// endpoints, the admin-consent proxy to its authority, and the page's settings.
const (
	customerPath = Prefix + "customer/"
	consentPath  = Prefix + "consent/"
	configPath   = Prefix + "config.json"
)

// maxProxyBody bounds what the page sends the stand-in, as the API bounds its own bodies.
const maxProxyBody = 64 << 10

//go:embed static
var static embed.FS

// Options configure the page.
type Options struct {
	// StandIn is the local stand-in's base URL, https://host:port: its /control/ endpoints
	// play the customer, and it is the authority that serves admin consent (the local
	// stack's authority host).
	StandIn string
	// Transport reaches the stand-in (nil: http.DefaultTransport, which trusts the local
	// certificate through SSL_CERT_FILE).
	Transport http.RoundTripper
	Log       *slog.Logger
}

// Page serves the wizard page, its files and its proxies.
type Page struct {
	standIn *url.URL
	log     *slog.Logger
	mux     *http.ServeMux
	config  []byte
}

// New builds the page for the stand-in at o.StandIn.
func New(o Options) (*Page, error) {
	u, err := url.Parse(strings.TrimSuffix(o.StandIn, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("wizard: the stand-in must be an https base URL like https://127.0.0.1:7443, got %q", o.StandIn)
	}
	u.Path = ""
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(pageConfig{Authority: u.String() + "/", Customer: customerPath, Consent: consentPath})
	if err != nil {
		return nil, err
	}
	p := &Page{standIn: u, log: log, mux: http.NewServeMux(), config: cfg}
	transport := o.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	control := p.proxy(transport, customerPath, "/control/")
	consent := p.proxy(transport, consentPath, "/")
	p.mux.Handle("GET "+Prefix+"{$}", pageFiles(files, "index.html"))
	p.mux.Handle("GET "+Prefix+"{file}", pageFiles(files, ""))
	p.mux.HandleFunc("GET "+configPath, p.serveConfig)
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		p.mux.Handle(m+" "+customerPath+"{path...}", control)
	}
	// How the tenant administrator answers an admin consent (accept in a tenant, or refuse).
	p.mux.Handle("PUT "+customerPath+"consent/{appId}", control)
	// Only the authority's admin-consent endpoint (and what its page posts back to).
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		p.mux.Handle(m+" "+consentPath+"{tenant}/adminconsent", consent)
		p.mux.Handle(m+" "+consentPath+"{tenant}/adminconsent/{path...}", consent)
	}
	return p, nil
}

// pageConfig tells the script where things are.
type pageConfig struct {
	// Authority is the stand-in's base URL as the API writes it into admin-consent URLs:
	// the page opens such a URL through Consent instead.
	Authority string `json:"authority"`
	Customer  string `json:"customer"`
	Consent   string `json:"consent"`
}

func (p *Page) serveConfig(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(p.config)
}

// ServeHTTP serves the page's routes; anything else under Prefix is 404.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	p.mux.ServeHTTP(w, r)
}

// Beside serves page under Prefix and every other path with api, whose routes (and their
// answers to unknown paths) stay exactly as they are.
func Beside(api, page http.Handler) http.Handler {
	base := strings.TrimSuffix(Prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == base || strings.HasPrefix(r.URL.Path, Prefix) {
			page.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// pageHeaders are the page's security headers: its own files only, no framing, no
// referrer (a token never sits in a URL the page sends anywhere, but the rule costs nothing).
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// pageFiles serves the embedded files: name, or the {file} of the path when name is "".
func pageFiles(files fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file := name
		if file == "" {
			file = r.PathValue("file")
		}
		if !fs.ValidPath(file) || strings.HasPrefix(file, ".") {
			http.NotFound(w, r)
			return
		}
		pageHeaders(w.Header())
		// The binary is the version: a new build serves new files, and an open tab
		// reloads them rather than mixing an old script with a new API.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, file)
	})
}

// proxy forwards requests under from to the stand-in's path under to, without the
// caller's credentials, and maps the stand-in's redirects back onto the page's origin.
func (p *Page) proxy(transport http.RoundTripper, from, to string) http.Handler {
	rp := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Scheme, out.URL.Host = p.standIn.Scheme, p.standIn.Host
			out.URL.Path = to + strings.TrimPrefix(pr.In.URL.Path, from)
			out.URL.RawPath = ""
			out.Host = p.standIn.Host
			// The API token and the organization are the platform's business, never the
			// customer's Azure.
			for _, h := range []string{"Authorization", "Cookie", "X-Activeloop-Org-Id", "Origin", "Referer"} {
				out.Header.Del(h)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set("Location", p.onPage(loc))
			}
			resp.Header.Set("X-Content-Type-Options", "nosniff")
			resp.Header.Set("Referrer-Policy", "no-referrer")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.WarnContext(r.Context(), "wizard: the stand-in did not answer", "path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"code": "StandInUnavailable", "message": "the local stand-in did not answer: is the local stack running?"}})
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxProxyBody)
		rp.ServeHTTP(w, r)
	})
}

// onPage maps a URL of the stand-in to the page's own route for it; any other URL (the
// wizard page an administrator is sent back to, say) is left alone.
func (p *Page) onPage(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Host != p.standIn.Host || u.Scheme != p.standIn.Scheme {
		return loc
	}
	path := u.EscapedPath()
	var mapped string
	switch {
	case strings.HasPrefix(path, "/control/"):
		mapped = customerPath + strings.TrimPrefix(path, "/control/")
	case isConsentPath(path):
		mapped = consentPath + strings.TrimPrefix(path, "/")
	default:
		return loc
	}
	if u.RawQuery != "" {
		mapped += "?" + u.RawQuery
	}
	return mapped
}

// isConsentPath reports whether path is /{tenant}/adminconsent[/...].
func isConsentPath(path string) bool {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	return len(parts) >= 2 && parts[0] != "" && parts[1] == "adminconsent"
}
