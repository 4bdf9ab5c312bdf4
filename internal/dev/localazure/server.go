package localazure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultIdentityHeader is the X-IDENTITY-HEADER value the managed identity endpoint
// expects when Config.IdentityHeader is empty. App Service generates a secret here; the
// stand-in has nothing to protect, so any agreed non-empty value will do.
const DefaultIdentityHeader = "local"

// ManagedIdentity is the backend's user-assigned managed identity in the home tenant: the
// identity every federated identity credential trusts.
type ManagedIdentity struct {
	// ClientID is the identity's client (application) id, sent as client_id to the
	// managed identity endpoint.
	ClientID string
	// ObjectID is the identity's principal (object) id: the sub and oid of its tokens and
	// therefore the subject of every federated identity credential.
	ObjectID string
}

// Config is the stand-in's configuration, validated once by New.
type Config struct {
	// HomeTenantID is the platform's own tenant, where app registrations live.
	HomeTenantID string
	// ManagedIdentity is the backend's identity in the home tenant.
	ManagedIdentity ManagedIdentity
	// Tenants are the customer tenants that exist from the start. More can be created
	// through the control endpoints.
	Tenants []string
	// PropagationDelay is how long a role grant or revoke takes to take effect, like Azure
	// RBAC's propagation (up to a few minutes in Azure).
	PropagationDelay time.Duration
	// FICPropagationDelay is how long a new federated identity credential is invisible to
	// the token endpoint (Entra answers AADSTS70021 meanwhile). Zero by default.
	FICPropagationDelay time.Duration
	// IdentityHeader is the value the managed identity endpoint expects in
	// X-IDENTITY-HEADER (the IDENTITY_HEADER environment variable of App Service).
	// DefaultIdentityHeader when empty.
	IdentityHeader string
	// Now is the clock; time.Now when nil. Tokens, expiries and propagation use it.
	Now func() time.Time
	// Containers creates blob containers for POST /control/storageAccounts/{a}/containers.
	// Without it that endpoint answers 501.
	Containers ContainerCreator
	// Logger receives one JSON line per request and per token decision. Discarded when nil.
	Logger *slog.Logger
	// SigningKey signs every token the stand-in issues. A fresh 2048-bit key when nil.
	SigningKey *rsa.PrivateKey
	// APIAppID, when set, is the client id of the platform API's app registration in the
	// home tenant (multi-tenant, v2.0 tokens), with its service principal there: the
	// resource customers' managed identities get tokens for once the customer has
	// installed it in their tenant (POST /control/tenants/{t}/servicePrincipals).
	APIAppID string
}

// Server is the stand-in. Its zero value is not usable; create it with New.
type Server struct {
	home           string
	mi             ManagedIdentity
	identityHeader string
	roleDelay      time.Duration
	ficDelay       time.Duration
	now            func() time.Time
	log            *slog.Logger
	key            *rsa.PrivateKey
	keyID          string
	containers     ContainerCreator
	handler        http.Handler
	apiApp         *application // the platform API's app registration; nil when not configured

	mu          sync.Mutex
	tenants     map[string]*tenant             // by lower-case id
	apps        map[string]*application        // by object id
	appsByAppID map[string]*application        // by app (client) id
	accounts    map[string]StorageAccount      // by account name
	assignments []*RoleAssignment              // in creation order
	faults      map[Operation][]*Fault         // FIFO per operation
	chaos       chaosState                     // random faults, own lock
	firewalled  map[string]bool                // accounts whose network rules refuse every request
	consent     map[string]AdministratorChoice // by app id: how the administrator answers its admin consent
	rogueKey    *rsa.PrivateKey                // signs tokens with a key never published; made on first use
	rogueKeyID  string
}

type tenant struct {
	id          string
	displayName string
	createdAt   time.Time
	sps         map[string]*servicePrincipal     // by app id
	identities  map[string]*userAssignedIdentity // customers' managed identities, by client id
}

type servicePrincipal struct {
	objectID    string
	appID       string
	displayName string
	tenantID    string
	createdAt   time.Time
	// orphaned is set when the home tenant deletes the app registration: the SP object
	// stays in the customer's directory (as in Azure) but can no longer sign in.
	orphaned bool
}

type application struct {
	objectID       string
	appID          string
	uniqueName     string // alternate key, immutable once set; "" when none
	displayName    string
	signInAudience string
	createdAt      time.Time
	ownerObjectID  string
	fics           []*federatedCredential
	// redirectURIs are the app's web redirect URIs: where the admin consent endpoint may
	// send the administrator back.
	redirectURIs []string
}

type federatedCredential struct {
	id          string
	name        string
	issuer      string
	subject     string
	audiences   []string
	description string
	createdAt   time.Time
}

// New validates cfg and returns a server with the home tenant and cfg.Tenants in place.
func New(cfg Config) (*Server, error) {
	if !isGUID(cfg.HomeTenantID) {
		return nil, fmt.Errorf("home tenant id %q is not a GUID", cfg.HomeTenantID)
	}
	if !isGUID(cfg.ManagedIdentity.ClientID) || !isGUID(cfg.ManagedIdentity.ObjectID) {
		return nil, errors.New("managed identity client id and object id must be GUIDs")
	}
	if cfg.PropagationDelay < 0 || cfg.FICPropagationDelay < 0 {
		return nil, errors.New("propagation delays must not be negative")
	}
	s := &Server{
		home:           strings.ToLower(cfg.HomeTenantID),
		mi:             ManagedIdentity{ClientID: strings.ToLower(cfg.ManagedIdentity.ClientID), ObjectID: strings.ToLower(cfg.ManagedIdentity.ObjectID)},
		identityHeader: cfg.IdentityHeader,
		roleDelay:      cfg.PropagationDelay,
		ficDelay:       cfg.FICPropagationDelay,
		now:            cfg.Now,
		log:            cfg.Logger,
		key:            cfg.SigningKey,
		containers:     cfg.Containers,
		tenants:        map[string]*tenant{},
		apps:           map[string]*application{},
		appsByAppID:    map[string]*application{},
		accounts:       map[string]StorageAccount{},
		faults:         map[Operation][]*Fault{},
	}
	if s.identityHeader == "" {
		s.identityHeader = DefaultIdentityHeader
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.key == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		s.key = key
	}
	sum := sha256.Sum256(s.key.N.Bytes())
	s.keyID = base64.RawURLEncoding.EncodeToString(sum[:12])

	now := s.now()
	s.tenants[s.home] = &tenant{id: s.home, displayName: "Home", createdAt: now, sps: map[string]*servicePrincipal{},
		identities: map[string]*userAssignedIdentity{}}
	if cfg.APIAppID != "" {
		if err := s.registerAPIApp(strings.ToLower(cfg.APIAppID)); err != nil {
			return nil, err
		}
	}
	for _, id := range cfg.Tenants {
		if _, _, err := s.AddTenant(id, ""); err != nil {
			return nil, fmt.Errorf("add tenant %q: %w", id, err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP face of the server: Entra, managed identity, Graph and control
// endpoints on one mux. Serve it over TLS: azidentity and MSAL refuse plain http.
func (s *Server) Handler() http.Handler { return s.handler }

// routes splits the path space by prefix first, so that each surface's catch-all cannot
// collide with another surface's wildcard patterns.
func (s *Server) routes() http.Handler {
	// Entra ID (login.microsoftonline.com) and the managed identity endpoint.
	entra := http.NewServeMux()
	entra.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenIDConfiguration)
	entra.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleKeys)
	entra.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	entra.HandleFunc("GET /{tenant}/adminconsent", s.handleAdminConsent)
	entra.HandleFunc("GET /msi/token", s.handleManagedIdentityToken) // App Service IDENTITY_ENDPOINT
	// A customer workload's identity endpoint, serving its tenant's managed identities.
	entra.HandleFunc("GET "+WorkloadIdentityPath("{tenant}"), s.handleWorkloadIdentityToken)

	// Microsoft Graph v1.0.
	graph := http.NewServeMux()
	graph.HandleFunc("POST /v1.0/applications", s.graph(s.handleCreateApplication))
	graph.HandleFunc("GET /v1.0/applications", s.graph(s.handleListApplications))
	graph.HandleFunc("GET /v1.0/applications/{id}", s.graph(s.handleGetApplication))
	graph.HandleFunc("DELETE /v1.0/applications/{id}", s.graph(s.handleDeleteApplication))
	graph.HandleFunc("POST /v1.0/applications/{id}/federatedIdentityCredentials", s.graph(s.handleCreateFederatedCredential))
	graph.HandleFunc("GET /v1.0/applications/{id}/federatedIdentityCredentials", s.graph(s.handleListFederatedCredentials))
	graph.HandleFunc("GET /v1.0/{segment}", s.graph(s.handleGraphSegment))
	graph.HandleFunc("PATCH /v1.0/{segment}", s.graph(s.handleUpsertApplication))
	graph.HandleFunc("/v1.0/", s.graph(s.handleGraphUnknown))

	// Control endpoints: the customer's side.
	control := http.NewServeMux()
	control.HandleFunc("GET /control/tenants", s.handleListTenants)
	control.HandleFunc("POST /control/tenants", s.handleCreateTenant)
	control.HandleFunc("GET /control/tenants/{tenant}/servicePrincipals", s.handleListServicePrincipals)
	control.HandleFunc("POST /control/tenants/{tenant}/servicePrincipals", s.handleInstallServicePrincipal)
	control.HandleFunc("DELETE /control/tenants/{tenant}/servicePrincipals/{id}", s.handleRemoveServicePrincipal)
	control.HandleFunc("GET /control/tenants/{tenant}/managedIdentities", s.handleListManagedIdentities)
	control.HandleFunc("POST /control/tenants/{tenant}/managedIdentities", s.handleCreateManagedIdentity)
	control.HandleFunc("DELETE /control/tenants/{tenant}/managedIdentities/{id}", s.handleDeleteManagedIdentity)
	control.HandleFunc("POST /control/tenants/{tenant}/managedIdentities/{id}/token", s.handleMintWorkloadToken)
	control.HandleFunc("GET /control/applications", s.handleControlListApplications)
	control.HandleFunc("PUT /control/consent/{appId}", s.handleSetAdministratorChoice)
	control.HandleFunc("GET /control/storageAccounts", s.handleListStorageAccounts)
	control.HandleFunc("POST /control/storageAccounts", s.handleRegisterStorageAccount)
	control.HandleFunc("POST /control/storageAccounts/{account}/containers", s.handleCreateContainer)
	control.HandleFunc("GET /control/storageAccounts/{account}/firewall", s.handleGetFirewall)
	control.HandleFunc("POST /control/storageAccounts/{account}/firewall", s.handleSetFirewall)
	control.HandleFunc("GET /control/roleAssignments", s.handleListRoleAssignments)
	control.HandleFunc("POST /control/roleAssignments", s.handleGrantRole)
	control.HandleFunc("DELETE /control/roleAssignments", s.handleRevokeRoleByQuery)
	control.HandleFunc("DELETE /control/roleAssignments/{id}", s.handleRevokeRole)
	control.HandleFunc("GET /control/faults", s.handleListFaults)
	control.HandleFunc("POST /control/faults", s.handleInjectFault)
	control.HandleFunc("DELETE /control/faults", s.handleClearFaults)
	control.HandleFunc("GET /control/chaos", s.handleGetChaos)
	control.HandleFunc("POST /control/chaos", s.handleSetChaos)
	control.HandleFunc("DELETE /control/chaos", s.handleStopChaos)
	control.HandleFunc("/control/", func(w http.ResponseWriter, r *http.Request) {
		writeControlError(w, &Error{Status: http.StatusNotFound, Code: "NotFound", Message: fmt.Sprintf("no control endpoint %s %s", r.Method, r.URL.Path)})
	})

	root := http.NewServeMux()
	root.Handle("/v1.0/", graph)
	root.Handle("/control/", control)
	root.Handle("/", entra)
	return s.middleware(root)
}

type ctxKey struct{}

func contextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// requestID returns the id the middleware gave this request.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxKey{}).(string)
	return id
}

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// middleware gives every request an id (echoed in the headers Entra and Graph use), logs
// one line per request and turns a panic into a 500.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		r = r.WithContext(contextWithRequestID(r.Context(), id))
		w.Header().Set("request-id", id)
		w.Header().Set("x-ms-request-id", id)
		if c := r.Header.Get("client-request-id"); c != "" {
			w.Header().Set("client-request-id", c)
		}
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if rec.status == 0 {
					writeControlError(rec, &Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "internal error, request " + id})
				}
			}
			s.log.Info("request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration_ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

// registerAPIApp registers the platform API's app, as the deployment does in Azure: a
// multi-tenant app with v2.0 tokens whose client id is its audience, and its service
// principal in the home tenant. It is not the backend's to list or change (the managed
// identity does not own it), so Graph does not show it.
func (s *Server) registerAPIApp(appID string) error {
	if !isGUID(appID) || appID == s.mi.ClientID {
		return fmt.Errorf("platform API app id %q must be a GUID other than the managed identity's", appID)
	}
	now := s.now()
	s.apiApp = &application{objectID: uuid.NewString(), appID: appID, displayName: APIAppDisplayName,
		signInAudience: "AzureADMultipleOrgs", createdAt: now}
	s.tenants[s.home].sps[appID] = &servicePrincipal{objectID: uuid.NewString(), appID: appID,
		displayName: APIAppDisplayName, tenantID: s.home, createdAt: now}
	return nil
}

// lookupAppID finds an app registration by its client id, the platform API's included.
// Called with s.mu held.
func (s *Server) lookupAppID(appID string) *application {
	if a, ok := s.appsByAppID[appID]; ok {
		return a
	}
	if s.apiApp != nil && s.apiApp.appID == appID {
		return s.apiApp
	}
	return nil
}

// isGUID reports whether s is a GUID in its usual 8-4-4-4-12 spelling, as Azure ids are.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// sortedKeys returns m's keys in order, for stable listings.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
