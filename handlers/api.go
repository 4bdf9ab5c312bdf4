package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/activeloopai/azcreds/internal/auth"
)

// Authenticator verifies API bearer tokens.
type Authenticator interface {
	Verify(ctx context.Context, token string) (auth.Principal, error)
}

// OrgHeader carries the organization the caller acts for; it must equal the path's org.
const OrgHeader = "X-Activeloop-Org-Id"

// Route is one registered endpoint; the OpenAPI test walks this list, and the Functions
// host's HTTP functions are generated from it (HostFunctions).
type Route struct {
	Method  string
	Pattern string // net/http pattern path, e.g. /organizations/{org}/credentials/{id}
	Public  bool   // served without authentication
	// Function names the route's function for the Functions host:
	// functions/<Function>/function.json. Only "/" has none: the host probes it by itself.
	Function string
	handler  handlerFunc
}

// API serves the credential endpoints.
type API struct {
	onboarding Onboarding
	issuance   Issuance
	authn      Authenticator
	log        *slog.Logger
	routes     []Route
	mux        *http.ServeMux
}

// New builds the HTTP API on the domain's onboarding and issuance.
func New(onboarding Onboarding, issuance Issuance, authn Authenticator, log *slog.Logger) *API {
	a := &API{onboarding: onboarding, issuance: issuance, authn: authn, log: log, mux: http.NewServeMux()}
	a.routes = []Route{
		{Method: http.MethodGet, Pattern: "/", Public: true, handler: a.health},
		{Method: http.MethodGet, Pattern: "/openapi.json", Public: true, Function: "openapi", handler: a.openAPI},
		{Method: http.MethodPost, Pattern: "/organizations/{org}/credentials", Function: "credentials-create", handler: a.create},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials", Function: "credentials-list", handler: a.list},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials/{id}", Function: "credential-get", handler: a.get},
		{Method: http.MethodDelete, Pattern: "/organizations/{org}/credentials/{id}", Function: "credential-delete", handler: a.delete},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials/{id}/events", Function: "credential-events", handler: a.events},
		{Method: http.MethodPost, Pattern: "/organizations/{org}/credentials/{id}/tenant", Function: "credential-tenant", handler: a.submitTenant},
		{Method: http.MethodPost, Pattern: "/organizations/{org}/credentials/{id}/storage", Function: "credential-storage", handler: a.submitStorage},
		{Method: http.MethodPost, Pattern: "/organizations/{org}/credentials/{id}/save-unverified", Function: "credential-save-unverified", handler: a.saveUnverified},
		{Method: http.MethodPut, Pattern: "/organizations/{org}/credential", Function: "org-default-set", handler: a.setOrgDefault},
		{Method: http.MethodDelete, Pattern: "/organizations/{org}/credential", Function: "org-default-clear", handler: a.clearOrgDefault},
		{Method: http.MethodPost, Pattern: "/organizations/{org}/workspaces", Function: "workspaces-register", handler: a.registerWorkspace},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/workspaces/{ws}", Function: "workspace-get", handler: a.getWorkspace},
		{Method: http.MethodPut, Pattern: "/organizations/{org}/workspaces/{ws}/credential", Function: "workspace-link", handler: a.linkWorkspace},
		{Method: http.MethodDelete, Pattern: "/organizations/{org}/workspaces/{ws}/credential", Function: "workspace-unlink", handler: a.unlinkWorkspace},
		{Method: http.MethodPost, Pattern: "/api/org/{ws}/ds/{table}/creds", Function: "table-creds", handler: a.issueSAS},
	}
	for _, rt := range a.routes {
		h := rt.handler
		if !rt.Public {
			h = a.authorized(h)
		}
		pattern := rt.Method + " " + rt.Pattern
		if rt.Pattern == "/" {
			pattern = rt.Method + " /{$}"
		}
		a.mux.Handle(pattern, serve(log, h))
	}
	return a
}

// Routes lists the registered endpoints.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// ServeHTTP routes a request; unknown paths and methods get JSON errors too, and so does
// a path that ServeMux would redirect to its cleaned form.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !canonicalPath(r.URL.EscapedPath()) {
		serve(a.log, func(w http.ResponseWriter, r *http.Request) error {
			return fail(http.StatusBadRequest, codeInvalidRequest, `the path must not have empty, "." or ".." segments`)
		}).ServeHTTP(w, r)
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		serve(a.log, func(w http.ResponseWriter, r *http.Request) error { return a.unrouted(w, r) }).ServeHTTP(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *API) unrouted(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := a.mux.Handler(probe); p != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return fail(http.StatusMethodNotAllowed, codeMethod, "method %s is not allowed here; allowed: %s", r.Method, strings.Join(allowed, ", "))
	}
	return fail(http.StatusNotFound, codeNotFound, "no such endpoint")
}

func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

type orgKey struct{}

// orgOf is the organization an authorized request acts for.
func orgOf(r *http.Request) string {
	org, _ := r.Context().Value(orgKey{}).(string)
	return org
}

// orgPattern bounds organization ids to what is safe as a Table partition key and in logs.
var orgPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// authorized checks the bearer token and that it covers the path's organization, which
// the org header must name as well.
func (a *API) authorized(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(raw) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			return fail(http.StatusUnauthorized, codeUnauthenticated, "missing bearer token (Authorization: Bearer <api_token>)")
		}
		p, err := a.authn.Verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			a.log.InfoContext(r.Context(), "token refused", "request_id", RequestID(r.Context()), "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			return fail(http.StatusUnauthorized, codeUnauthenticated, "invalid or expired bearer token")
		}
		org := r.PathValue("org")
		header := r.Header.Get(OrgHeader)
		if header == "" {
			return fail(http.StatusForbidden, codeForbidden, "the %s header is required and must name the organization in the path", OrgHeader)
		}
		if org == "" {
			org = header // the SDK's /api routes name the organization only in the header
		}
		if header != org {
			return fail(http.StatusForbidden, codeForbidden, "the %s header does not match the organization in the path", OrgHeader)
		}
		if !p.CanAccess(org) {
			return fail(http.StatusForbidden, codeForbidden, "the token is not valid for organization %q", org)
		}
		if !orgPattern.MatchString(org) {
			return fail(http.StatusBadRequest, codeInvalidRequest, "invalid organization id")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), orgKey{}, org)))
	}
}
