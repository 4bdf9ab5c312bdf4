package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/credential"
)

// Authenticator verifies API bearer tokens of either kind and says who they speak for: a
// platform user, or a customer's workload identity when those are on (auth.Authenticator
// is one).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (auth.Caller, error)
	WorkloadIdentities() bool
}

// WorkloadLookup admits a workload identity's verified token to an organization: the
// registration of its tenant and client id there, or an error matching
// credential.ErrNotFound when the organization has not registered it
// (credential.WorkloadIdentities is one).
type WorkloadLookup interface {
	Lookup(ctx context.Context, orgID, tenantID, clientID string) (*credential.WorkloadIdentity, error)
}

// Registry is the registry of workload identities: its endpoints and the lookup that
// admits their tokens.
type Registry interface {
	WorkloadIdentities
	WorkloadLookup
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

// HealthLog reads a credential's health history; credential.HealthMonitor is one.
type HealthLog interface {
	HealthEvents(ctx context.Context, orgID, id string) ([]credential.HealthEvent, error)
}

// APIOption adjusts the API.
type APIOption func(*API)

// WithHealthLog serves the credentials' health history (GET .../credentials/{id}/health)
// from h. Without it the route answers 404.
func WithHealthLog(h HealthLog) APIOption { return func(a *API) { a.healthLog = h } }

// API serves the credential endpoints.
type API struct {
	onboarding Onboarding
	issuance   Issuance
	healthLog  HealthLog
	workloads  WorkloadIdentities
	lookup     WorkloadLookup
	authn      Authenticator
	log        *slog.Logger
	routes     []Route
	mux        *http.ServeMux
}

// New builds the HTTP API on the domain's onboarding, issuance and registry of workload
// identities. Whether workload identities are on is authn's to say: off, their routes
// answer 501 and their tokens are refused.
func New(onboarding Onboarding, issuance Issuance, registry Registry, authn Authenticator, log *slog.Logger, opts ...APIOption) *API {
	a := &API{onboarding: onboarding, issuance: issuance, workloads: registry, lookup: registry, authn: authn, log: log,
		mux: http.NewServeMux()}
	for _, o := range opts {
		o(a)
	}
	a.routes = []Route{
		{Method: http.MethodGet, Pattern: "/", Public: true, handler: a.alive},
		{Method: http.MethodGet, Pattern: "/openapi.json", Public: true, Function: "openapi", handler: a.openAPI},
		{Method: http.MethodPost, Pattern: "/organizations/{org}/credentials", Function: "credentials-create", handler: a.create},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials", Function: "credentials-list", handler: a.list},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials/{id}", Function: "credential-get", handler: a.get},
		{Method: http.MethodDelete, Pattern: "/organizations/{org}/credentials/{id}", Function: "credential-delete", handler: a.delete},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials/{id}/events", Function: "credential-events", handler: a.events},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/credentials/{id}/health", Function: "credential-health", handler: a.health},
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
		{Method: http.MethodPost, Pattern: "/organizations/{org}/workload-identities", Function: "workload-identities-register", handler: a.registerWorkloadIdentity},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/workload-identities", Function: "workload-identities-list", handler: a.listWorkloadIdentities},
		{Method: http.MethodGet, Pattern: "/organizations/{org}/workload-identities/events", Function: "workload-identities-events", handler: a.workloadIdentityEvents},
		{Method: http.MethodDelete, Pattern: "/organizations/{org}/workload-identities/{id}", Function: "workload-identity-remove", handler: a.removeWorkloadIdentity},
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

func (a *API) alive(w http.ResponseWriter, r *http.Request) error {
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

// authorized checks the bearer token and that its caller may act for the path's
// organization, which the org header must name as well: a platform token must cover it, a
// workload identity must be registered in it. The caller becomes the request's actor
// (credential.WithActor), which the events it causes and its log line record.
func (a *API) authorized(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(raw) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			return fail(http.StatusUnauthorized, codeUnauthenticated, "missing bearer token (Authorization: Bearer <api_token>, "+
				"or a registered workload identity's Entra access token for the platform API)")
		}
		caller, err := a.authn.Authenticate(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			// The cause names what was wrong (a v1.0 token, another audience, an unknown
			// key) and never quotes the token; it is logged, not answered.
			a.log.InfoContext(r.Context(), "token refused", "request_id", RequestID(r.Context()), "cause", auth.Cause(err), "err", err)
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
		noteCaller(r.Context(), caller)
		actor, err := a.admit(r, caller, org)
		if err != nil {
			return err
		}
		noteActor(r.Context(), actor)
		ctx := credential.WithActor(context.WithValue(r.Context(), orgKey{}, org), actor)
		return h(w, r.WithContext(ctx))
	}
}

// admit decides whether caller may act for org, and as whom.
func (a *API) admit(r *http.Request, caller auth.Caller, org string) (credential.Actor, error) {
	switch caller.Kind {
	case auth.CallerUser:
		if !caller.User.CanAccess(org) {
			return credential.Actor{}, fail(http.StatusForbidden, codeForbidden, "the token is not valid for organization %q", org)
		}
		if !orgPattern.MatchString(org) {
			return credential.Actor{}, fail(http.StatusBadRequest, codeInvalidRequest, "invalid organization id")
		}
		return credential.Actor{Kind: credential.ActorUser, ID: caller.User.Subject}, nil
	case auth.CallerWorkload:
		// Checked first: the organization is the partition the lookup reads.
		if !orgPattern.MatchString(org) {
			return credential.Actor{}, fail(http.StatusBadRequest, codeInvalidRequest, "invalid organization id")
		}
		wl := caller.Workload
		wi, err := a.lookup.Lookup(r.Context(), org, wl.TenantID, wl.ClientID)
		if errors.Is(err, credential.ErrNotFound) {
			return credential.Actor{}, fail(http.StatusForbidden, codeForbidden,
				"the workload identity with client id %s in tenant %s is not registered in organization %q: a platform user of the "+
					"organization registers it with POST /organizations/%s/workload-identities", wl.ClientID, wl.TenantID, org, org)
		}
		if err != nil {
			return credential.Actor{}, err
		}
		return credential.Actor{Kind: credential.ActorWorkloadIdentity, ID: wi.ID, ClientID: wi.ClientID, TenantID: wi.TenantID}, nil
	}
	return credential.Actor{}, fail(http.StatusUnauthorized, codeUnauthenticated, "invalid or expired bearer token")
}
