package localazure

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The storage front: Azure Storage's data-plane authorization, in front of Azurite.
//
// Azurite accepts any well-formed bearer token (with --oauth basic) and checks no role at
// all. The front answers the way a storage account in Azure answers the stand-in's
// principals: the bearer token must be one the stand-in issued for Azure Storage, its oid
// is the principal, and the principal's effective roles at request time (propagation
// delay included) decide, per operation, between forwarding the request to Azurite and a
// 403 AuthorizationPermissionMismatch. An account's firewall switch refuses every request
// with 403 AuthorizationFailure, as network rules do. Requests signed with a SAS or a
// shared key, and anonymous ones, are Azurite's to judge and pass through untouched.
//
// Error codes and texts follow
// https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes.

// blobHostSuffix is the host suffix of local product-style blob endpoints:
// <account>.blob.localhost[:port], the local twin of <account>.blob.core.windows.net.
const blobHostSuffix = ".blob.localhost"

// storageErrorTime is the timestamp format of the Time line in storage error messages.
const storageErrorTime = "2006-01-02T15:04:05.0000000Z"

// Storage error codes the front answers with.
const (
	codeAuthorizationPermissionMismatch = "AuthorizationPermissionMismatch"
	codeAuthorizationFailure            = "AuthorizationFailure"
	codeAuthenticationFailed            = "AuthenticationFailed"
	codeInvalidAuthenticationInfo       = "InvalidAuthenticationInfo"
	codeInvalidURI                      = "InvalidUri"
	codeInternalError                   = "InternalError"
)

// Messages of those codes, as Azure words them.
const (
	msgPermissionMismatch = "This request is not authorized to perform this operation using this permission."
	msgAuthorizationFail  = "This request is not authorized to perform this operation."
	msgAuthenticationFail = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."
	msgInvalidAuthInfo    = "Server failed to authenticate the request. Please refer to the information in the www-authenticate header."
	msgInvalidURI         = "The requested URI does not represent any resource on the server."
	msgInternalError      = "The server encountered an internal error. Please retry the request."
)

// StorageFrontConfig configures Server.StorageFront.
type StorageFrontConfig struct {
	// Azurite is Azurite's blob endpoint without an account, e.g. https://127.0.0.1:10000.
	Azurite string
	// Transport reaches Azurite; a clone of http.DefaultTransport (which trusts
	// SSL_CERT_FILE) when nil.
	Transport http.RoundTripper
}

// storageFront is the handler Server.StorageFront returns.
type storageFront struct {
	s     *Server
	proxy *httputil.ReverseProxy
}

// StorageFront returns the RBAC-enforcing front for customer blob storage. It serves
// product-style hosts, <account>.blob.localhost[:port], and forwards what it allows to
// Azurite at cfg.Azurite with the Host header kept, so that Azurite takes the account from
// the host exactly as the client named it: a shared key signature, which covers the path
// as the client sent it, stays valid, and Azurite's answers name the account's own URL.
// Azurite's x-ms-request-id reaches the client unchanged; the front's own refusals, and
// Azurite's answers that lack one, carry the front's request id.
func (s *Server) StorageFront(cfg StorageFrontConfig) (http.Handler, error) {
	target, err := url.Parse(cfg.Azurite)
	if err != nil || (target.Scheme != "https" && target.Scheme != "http") || target.Host == "" ||
		strings.Trim(target.Path, "/") != "" || target.RawQuery != "" {
		return nil, fmt.Errorf("azurite blob endpoint %q: want a service root such as https://127.0.0.1:10000", cfg.Azurite)
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	f := &storageFront{s: s}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Out is a copy of In: only where it connects changes. Out.Host stays the
			// product-style host.
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
		},
		Transport: transport,
		// Azure answers every request with an x-ms-request-id. Azurite's own reaches the
		// client unchanged; where Azurite sends none (Get User Delegation Key), the front's
		// request id stands in.
		ModifyResponse: func(resp *http.Response) error {
			if resp.Header.Get("x-ms-request-id") == "" {
				resp.Header.Set("x-ms-request-id", requestID(resp.Request))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Error("storage front: Azurite unreachable", "request_id", requestID(r), "error", err.Error())
			f.refuse(w, r, http.StatusInternalServerError, codeInternalError, msgInternalError, "")
		},
	}
	return f, nil
}

// blobOperation is what a request asks of the account, as far as RBAC is concerned.
type blobOperation struct {
	name string
	// container is the container the request acts on; empty for the account itself
	// (account-scope operations such as Get User Delegation Key, which container-scope
	// grants do not cover).
	container string
	write     bool
}

// classifyBlobOperation maps a Blob service REST call to the data action it needs:
// reading (GET and HEAD, plus Query Blob Contents) or writing (everything else), on the
// account or on one container. Get User Delegation Key is a read-level action
// (generateUserDelegationKey, in every Storage Blob Data role) on the account.
// https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory#permissions-for-calling-data-operations
func classifyBlobOperation(r *http.Request) blobOperation {
	container, blobName, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	comp, restype := q.Get("comp"), q.Get("restype")
	read := r.Method == http.MethodGet || r.Method == http.MethodHead || (r.Method == http.MethodPost && comp == "query")
	op := blobOperation{container: container, write: !read}
	switch {
	case container == "" && r.Method == http.MethodPost && comp == "userdelegationkey":
		op.name, op.write = "get_user_delegation_key", false
	case container == "" && comp == "list":
		op.name = "list_containers"
	case container == "":
		op.name = "account_" + strings.ToLower(r.Method)
	case blobName == "" && restype == "container" && comp == "list":
		op.name = "list_blobs"
	case blobName == "" && restype == "container":
		op.name = "container_" + strings.ToLower(r.Method)
	default:
		op.name = "blob_" + strings.ToLower(r.Method)
	}
	if comp != "" && op.name != "get_user_delegation_key" && op.name != "list_containers" && op.name != "list_blobs" {
		op.name += "_" + comp
	}
	return op
}

// accountFromHost returns the account of a product-style host, <account>.blob.localhost
// with an optional port.
func accountFromHost(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	account, ok := strings.CutSuffix(host, blobHostSuffix)
	return account, ok && accountPattern.MatchString(account)
}

// isStorageAudience reports whether aud is Azure Storage's resource id, as a token for
// https://storage.azure.com/.default carries it.
func isStorageAudience(aud string) bool {
	return strings.TrimSuffix(aud, "/") == StorageAudience
}

func (f *storageFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	r = r.WithContext(contextWithRequestID(r.Context(), id))
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	account, decision, principal := "", "", ""
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // the proxy aborts a response that broke off mid-body: let net/http end it
			}
			f.s.log.Error("storage front panic", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if rec.status == 0 {
				f.refuse(rec, r, http.StatusInternalServerError, codeInternalError, msgInternalError, "")
			}
		}
		f.s.log.Info("storage request", "request_id", id, "account", account, "method", r.Method, "path", r.URL.Path,
			"principal_id", principal, "decision", decision, "status", rec.status,
			"x_ms_request_id", rec.Header().Get("x-ms-request-id"), "duration_ms", time.Since(start).Milliseconds())
	}()
	account, principal, decision = f.serve(rec, r)
}

// serve answers r and returns what the access log records.
func (f *storageFront) serve(w http.ResponseWriter, r *http.Request) (account, principal, decision string) {
	account, ok := accountFromHost(r.Host)
	if !ok {
		f.refuse(w, r, http.StatusBadRequest, codeInvalidURI, msgInvalidURI, "")
		return "", "", "not a <account>" + blobHostSuffix + " host"
	}
	if f.s.FirewallEnabled(account) {
		f.refuse(w, r, http.StatusForbidden, codeAuthorizationFailure, msgAuthorizationFail, "")
		return account, "", "firewall"
	}
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, token, _ := strings.Cut(auth, " ")
	switch {
	case r.URL.Query().Get("sig") != "":
		f.proxy.ServeHTTP(w, r)
		return account, "", "sas: forwarded"
	case auth == "":
		f.proxy.ServeHTTP(w, r)
		return account, "", "anonymous: forwarded"
	case strings.EqualFold(scheme, "SharedKey") || strings.EqualFold(scheme, "SharedKeyLite"):
		f.proxy.ServeHTTP(w, r)
		return account, "", "shared key: forwarded"
	case !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "":
		f.refuse(w, r, http.StatusForbidden, codeAuthenticationFailed, msgAuthenticationFail,
			fmt.Sprintf("Authentication scheme %s is not supported.", scheme))
		return account, "", "unsupported authorization"
	}

	claims, err := f.s.VerifyToken(strings.TrimSpace(token))
	switch {
	case errors.Is(err, ErrTokenExpired):
		f.unauthenticated(w, r, account, "Lifetime validation failed. The token is expired.")
		return account, "", "token expired"
	case err != nil:
		f.unauthenticated(w, r, account, "Signature validation failed. The token was not issued by this authority.")
		return account, "", "token invalid"
	case !isStorageAudience(claims.Audience):
		f.unauthenticated(w, r, account, "Audience validation failed. Audience did not match.")
		return account, claims.ObjectID, "wrong audience " + claims.Audience
	}
	if tid := f.s.accountTenant(account); tid != "" && !strings.EqualFold(tid, claims.TenantID) {
		f.unauthenticated(w, r, account, "Issuer validation failed. Issuer did not match.")
		return account, claims.ObjectID, "token of another tenant"
	}

	op := classifyBlobOperation(r)
	roles := f.s.EffectiveRoles(claims.ObjectID, account, op.container, f.s.now())
	for _, a := range roles {
		if (op.write && a.RoleDefinitionName.CanWrite()) || (!op.write && a.RoleDefinitionName.CanRead()) {
			f.proxy.ServeHTTP(w, r)
			return account, claims.ObjectID, fmt.Sprintf("%s allowed by %s at %s", op.name, a.RoleDefinitionName, a.Scope)
		}
	}
	f.refuse(w, r, http.StatusForbidden, codeAuthorizationPermissionMismatch, msgPermissionMismatch, "")
	return account, claims.ObjectID, op.name + " denied: no effective role allows it"
}

// accountTenant is the tenant a registered account belongs to, or "".
func (s *Server) accountTenant(account string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[account].TenantID
}

// unauthenticated answers 401 InvalidAuthenticationInfo with the WWW-Authenticate
// challenge Azure Storage sends, naming the authority of the account's tenant.
func (f *storageFront) unauthenticated(w http.ResponseWriter, r *http.Request, account, detail string) {
	tenant := f.s.accountTenant(account)
	if tenant == "" {
		tenant = "common"
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer authorization_uri=https://login.microsoftonline.com/%s/oauth2/authorize resource_id=%s", tenant, StorageAudience))
	f.refuse(w, r, http.StatusUnauthorized, codeInvalidAuthenticationInfo, msgInvalidAuthInfo, detail)
}

// refuse writes a storage error the way the Blob service does: the code in x-ms-error-code
// and in an XML body whose message ends with the request id and the time.
func (f *storageFront) refuse(w http.ResponseWriter, r *http.Request, status int, code, message, detail string) {
	id := requestID(r)
	var body strings.Builder
	body.WriteString(`<?xml version="1.0" encoding="utf-8"?><Error><Code>`)
	xmlEscape(&body, code)
	body.WriteString("</Code><Message>")
	xmlEscape(&body, fmt.Sprintf("%s\nRequestId:%s\nTime:%s", message, id, f.s.now().UTC().Format(storageErrorTime)))
	body.WriteString("</Message>")
	if detail != "" {
		body.WriteString("<AuthenticationErrorDetail>")
		xmlEscape(&body, detail)
		body.WriteString("</AuthenticationErrorDetail>")
	}
	body.WriteString("</Error>")

	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(body.Len()))
	h.Set("x-ms-error-code", code)
	h.Set("x-ms-request-id", id)
	if v := r.Header.Get("x-ms-version"); v != "" {
		h.Set("x-ms-version", v)
	}
	if c := r.Header.Get("x-ms-client-request-id"); c != "" {
		h.Set("x-ms-client-request-id", c)
	}
	h.Set("Date", f.s.now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body.String())) // the client went away; nothing left to tell it
	}
}

func xmlEscape(b *strings.Builder, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a strings.Builder does not fail
}

// SetFirewall turns the account's network rules on or off: with them on, the storage front
// refuses every request to the account (403 AuthorizationFailure), whatever its
// authorization, as Azure does for a client outside the allowed networks. The account
// need not be registered: network rules are checked before anything else.
func (s *Server) SetFirewall(account string, enabled bool) error {
	if !accountPattern.MatchString(account) {
		return badRequest("AccountNameInvalid", "%q is not a valid storage account name: 3-24 lowercase letters and digits", account)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firewalled == nil {
		s.firewalled = map[string]bool{}
	}
	if enabled {
		s.firewalled[account] = true
	} else {
		delete(s.firewalled, account)
	}
	s.log.Info("storage firewall", "account", account, "enabled", enabled)
	return nil
}

// FirewallEnabled reports whether the account's network rules refuse every request.
func (s *Server) FirewallEnabled(account string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firewalled[account]
}

type firewallView struct {
	Account string `json:"account"`
	Enabled bool   `json:"enabled"`
}

func (s *Server) handleSetFirewall(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	if body.Enabled == nil {
		writeControlError(w, badRequest("InvalidRequestContent", `body must be {"enabled": true} or {"enabled": false}`))
		return
	}
	account := r.PathValue("account")
	if err := s.SetFirewall(account, *body.Enabled); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, firewallView{Account: account, Enabled: *body.Enabled})
}

func (s *Server) handleGetFirewall(w http.ResponseWriter, r *http.Request) {
	account := r.PathValue("account")
	if !accountPattern.MatchString(account) {
		writeControlError(w, badRequest("AccountNameInvalid", "%q is not a valid storage account name", account))
		return
	}
	writeJSON(w, http.StatusOK, firewallView{Account: account, Enabled: s.FirewallEnabled(account)})
}
