package handlers

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/credential"
)

// tokenFactory signs hand-made tokens with the harness's trusted key, so each test case
// can break exactly one thing about an otherwise valid token.
type tokenFactory struct {
	t   *testing.T
	key *rsa.PrivateKey
	pub []byte // the trusted public key's PEM, the HMAC secret of an algorithm-confusion attack
	now time.Time
}

func newTokenFactory(t *testing.T, h *harness) tokenFactory {
	t.Helper()
	block, _ := pem.Decode(h.signingKey)
	if block == nil {
		t.Fatal("harness signing key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return tokenFactory{t: t, key: k.(*rsa.PrivateKey), pub: h.publicKey, now: h.clock.Now()}
}

// claims are those of a good token for orgs; edit changes a copy.
func (f tokenFactory) claims(edit func(jwt.MapClaims), orgs ...string) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1", "orgs": orgs,
		"iat": f.now.Unix(), "nbf": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func (f tokenFactory) rs256(c jwt.MapClaims) string {
	f.t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// hs256WithPublicKey is the algorithm-confusion attack: an HMAC token whose secret is the
// server's public key, which a verifier that trusts the header's alg would accept.
func (f tokenFactory) hs256WithPublicKey(c jwt.MapClaims) string {
	f.t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(f.pub)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// unsigned is an "alg: none" token built by hand, as an attacker would.
func (f tokenFactory) unsigned(c jwt.MapClaims) string {
	f.t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			f.t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(c) + "."
}

// TestTokenRefusals sends forged and broken tokens through the HTTP API (TestAuthentication
// has the missing, garbage, expired and wrong-key ones). Each is refused with the right
// status and error code, and no answer quotes the token or any of its parts.
func TestTokenRefusals(t *testing.T) {
	h := newHarness(t)
	d := h.create(org, "c1", "az://bloblake/lakedata")
	path := "/organizations/" + org + "/credentials/" + d.ID
	f := newTokenFactory(t, h)
	now := f.now

	cases := []struct {
		name   string
		token  string
		org    string // header org; the path's org when empty
		status int
		code   string
	}{
		{"alg none", f.unsigned(f.claims(nil, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"alg none with an empty signature claiming every org", f.unsigned(f.claims(func(c jwt.MapClaims) { c["orgs"] = []string{"*", org} })), "", http.StatusUnauthorized, codeUnauthenticated},
		{"HS256 signed with the public key", f.hs256WithPublicKey(f.claims(nil, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"wrong issuer", f.rs256(f.claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"wrong audience", f.rs256(f.claims(func(c jwt.MapClaims) { c["aud"] = "another-api" }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"expired", f.rs256(f.claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-5 * time.Minute).Unix() }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"not valid yet", f.rs256(f.claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"issued in the future", f.rs256(f.claims(func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Minute).Unix() }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"no exp", f.rs256(f.claims(func(c jwt.MapClaims) { delete(c, "exp") }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"no sub", f.rs256(f.claims(func(c jwt.MapClaims) { delete(c, "sub") }, org)), "", http.StatusUnauthorized, codeUnauthenticated},
		{"signature of another token", func() string {
			good := strings.Split(f.rs256(f.claims(nil, "org-b")), ".")
			forged := strings.Split(f.rs256(f.claims(nil, org)), ".")
			return forged[0] + "." + forged[1] + "." + good[2]
		}(), "", http.StatusUnauthorized, codeUnauthenticated},
		{"orgs claim does not cover the org", f.rs256(f.claims(nil, "org-b", "org-a-other")), "", http.StatusForbidden, codeForbidden},
		{"orgs claim empty", f.rs256(f.claims(nil)), "", http.StatusForbidden, codeForbidden},
		{"orgs claim a wildcard", f.rs256(f.claims(nil, "*")), "", http.StatusForbidden, codeForbidden},
		{"orgs claim differs in case", f.rs256(f.claims(nil, strings.ToUpper(org))), "", http.StatusForbidden, codeForbidden},
		{"org header differs from the path, token covers both", f.rs256(f.claims(nil, org, "org-b")), "org-b", http.StatusForbidden, codeForbidden},
		{"org header differs from the path, token covers the header's", f.rs256(f.claims(nil, "org-b")), "org-b", http.StatusForbidden, codeForbidden},
		{"good", f.rs256(f.claims(nil, org)), "", http.StatusOK, ""},
	}
	for _, c := range cases {
		header := c.org
		if header == "" {
			header = org
		}
		r := h.do("GET", path, nil, map[string]string{"Authorization": "Bearer " + c.token, OrgHeader: header})
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.status, r.body)
			continue
		}
		assertNoTokenEcho(t, c.name, r, c.token)
		if c.status < 400 {
			continue
		}
		if e := r.errorBody(t); e.Code != c.code || e.RequestID == "" {
			t.Errorf("%s: error %+v, want code %s and a request id", c.name, e, c.code)
		}
		if c.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, r.header.Get("WWW-Authenticate"))
		}
	}

	// A token anywhere but the Authorization header counts for nothing.
	good := f.rs256(f.claims(nil, org))
	for _, c := range []struct {
		name, path string
		header     map[string]string
	}{
		{"query parameter", path + "?access_token=" + good, map[string]string{OrgHeader: org}},
		{"lower-case scheme", path, map[string]string{"Authorization": "bearer " + good, OrgHeader: org}},
		{"cookie", path, map[string]string{"Cookie": "token=" + good, OrgHeader: org}},
	} {
		r := h.do("GET", c.path, nil, c.header)
		if r.status != http.StatusUnauthorized {
			t.Errorf("token in a %s: status %d, want 401", c.name, r.status)
		}
		assertNoTokenEcho(t, "token in a "+c.name, r, good)
	}
}

// assertNoTokenEcho fails when the answer's body or headers quote tok or any of its parts.
func assertNoTokenEcho(t *testing.T, name string, r response, tok string) {
	t.Helper()
	var b strings.Builder
	b.Write(r.body)
	for k, vs := range r.header {
		b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	all := b.String()
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(all, part) {
			t.Errorf("%s: the response quotes the token", name)
			return
		}
	}
}

// secretOrg is a credential of org A with every identifying value distinct, so a test
// can look for any of them in org B's answers.
type secretOrg struct {
	cred      detailView
	workspace string
	table     string
	workload  workloadIdentityView
	values    []string // everything about A that B must never see
}

// newSecretOrg builds org A's credential, verified, org default, linked to a workspace
// whose first table has been issued a SAS.
func newSecretOrg(t *testing.T, h *harness, orgA string) secretOrg {
	t.Helper()
	const (
		account   = "sekritacct"
		container = "sekritbox"
		prefix    = "sekritprefix"
		tenant    = "a1f0c2d4-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
		spID      = "b2e1d3c5-6f70-4b9c-8d1e-2f3a4b5c6d7e"
		sub       = "c3d2e4f6-7081-4cad-9e2f-3a4b5c6d7e8f"
		rg        = "sekrit-rg"
		name      = "sekrit-cred"
	)
	d := h.create(orgA, name, "az://"+account+"/"+container+"/"+prefix)
	base := "/organizations/" + orgA + "/credentials/" + d.ID
	h.want(h.call("POST", orgA, base+"/tenant", map[string]string{"tenant_id": tenant}), http.StatusAccepted)
	h.advance(orgA, d.ID, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = spID })
	h.want(h.call("POST", orgA, base+"/storage", map[string]string{
		"subscription_id": sub, "resource_group": rg, "storage_account": account, "container_name": container}), http.StatusAccepted)
	h.advance(orgA, d.ID, credential.EventAccessConfirmed, nil)
	h.want(h.call("PUT", orgA, "/organizations/"+orgA+"/credential", map[string]string{"credential_id": d.ID}), http.StatusOK)
	ws, table := "sekrit-ws", "sekrit-table"
	h.want(h.call("POST", orgA, "/organizations/"+orgA+"/workspaces", map[string]string{"workspace_id": ws, "credential_id": d.ID}), http.StatusCreated)
	h.want(h.call("POST", orgA, "/api/org/"+ws+"/ds/"+table+"/creds", nil), http.StatusOK)

	r := h.call("GET", orgA, base, nil)
	h.want(r, http.StatusOK)
	var full detailView
	r.decode(t, &full)
	if full.Azure.AppID == "" || full.Azure.SPObjectID != spID || full.State != "verified" {
		t.Fatalf("org A's credential is not set up: %+v", full)
	}
	wi := h.registerWorkload(orgA, "sekrit-job", tenant, "d4c3b2a1-0f9e-4d8c-b7a6-958473625140")
	return secretOrg{cred: full, workspace: ws, table: table, workload: wi, values: []string{
		full.ID, name, full.Azure.AppID, tenant, spID, sub, rg, account, container, prefix, table,
		wi.ID, wi.DisplayName, wi.ClientID,
	}}
}

// TestNoResponseRevealsAnotherOrg calls every route of Routes() as org B, with org A's
// credential id, workspace and names wherever a route takes them, and then as B against
// A's paths. Nothing about A may appear in any status, body or header, and A's rows stay
// as they were.
func TestNoResponseRevealsAnotherOrg(t *testing.T) {
	h := newHarness(t)
	const orgA, orgB = "org-a", "org-b"
	a := newSecretOrg(t, h, orgA)
	// B has a credential of its own, so its list and default routes have something to show.
	own := h.create(orgB, "b-own", "az://bacct/bbox")

	routes := New(nil, nil, nil, nil, slog.New(slog.DiscardHandler)).Routes()
	// How B calls each route with A's values: the status B must get, and the body.
	type call struct {
		status int
		body   any
	}
	asB := map[string]call{
		"GET /":                                                      {http.StatusOK, nil},
		"GET /openapi.json":                                          {http.StatusOK, nil},
		"POST /organizations/{org}/credentials":                      {http.StatusConflict, map[string]string{"name": "b-own", "storage_type": "azure_federated", "base_path": "az://bacct/bbox"}},
		"GET /organizations/{org}/credentials":                       {http.StatusOK, nil},
		"GET /organizations/{org}/credentials/{id}":                  {http.StatusNotFound, nil},
		"DELETE /organizations/{org}/credentials/{id}":               {http.StatusNotFound, nil},
		"GET /organizations/{org}/credentials/{id}/events":           {http.StatusNotFound, nil},
		"GET /organizations/{org}/credentials/{id}/health":           {http.StatusNotFound, nil},
		"POST /organizations/{org}/credentials/{id}/tenant":          {http.StatusNotFound, map[string]string{"tenant_id": tenantID}},
		"POST /organizations/{org}/credentials/{id}/storage":         {http.StatusNotFound, storageBody("bacct", "bbox")},
		"POST /organizations/{org}/credentials/{id}/save-unverified": {http.StatusNotFound, map[string]string{}},
		"PUT /organizations/{org}/credential":                        {http.StatusNotFound, map[string]string{"credential_id": a.cred.ID}},
		"DELETE /organizations/{org}/credential":                     {http.StatusNoContent, nil},
		"POST /organizations/{org}/workspaces":                       {http.StatusNotFound, map[string]string{"workspace_id": "b-ws", "credential_id": a.cred.ID}},
		"GET /organizations/{org}/workspaces/{ws}":                   {http.StatusNotFound, nil},
		"PUT /organizations/{org}/workspaces/{ws}/credential":        {http.StatusNotFound, map[string]string{"credential_id": a.cred.ID}},
		"DELETE /organizations/{org}/workspaces/{ws}/credential":     {http.StatusNotFound, nil},
		"POST /api/org/{ws}/ds/{table}/creds":                        {http.StatusOK, nil},
		"POST /organizations/{org}/workload-identities": {http.StatusCreated, map[string]string{"display_name": "b-job",
			"client_id": "0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b", "tenant_id": tenantID}},
		"GET /organizations/{org}/workload-identities":         {http.StatusOK, nil},
		"GET /organizations/{org}/workload-identities/events":  {http.StatusOK, nil},
		"DELETE /organizations/{org}/workload-identities/{id}": {http.StatusNotFound, nil},
	}
	fill := func(pattern, orgID string) string {
		return strings.NewReplacer("{org}", orgID, "workload-identities/{id}", "workload-identities/"+a.workload.ID, "{id}", a.cred.ID,
			"{ws}", a.workspace, "{table}", a.table).Replace(pattern)
	}
	check := func(what string, r response) {
		t.Helper()
		var b strings.Builder
		b.Write(r.body)
		for k, vs := range r.header {
			b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		for _, v := range a.values {
			if strings.Contains(b.String(), v) {
				t.Errorf("%s: the answer (%d) contains org A's %q: %s", what, r.status, v, r.body)
			}
		}
	}

	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		c, ok := asB[key]
		if !ok {
			t.Errorf("route %s has no cross-organization case: add one", key)
			continue
		}
		path := fill(rt.Pattern, orgB)
		// The /creds route names the workspace and table in the path: B asked for A's
		// names, so its own answer may echo them; it must resolve to B's storage.
		if rt.Pattern == "/api/org/{ws}/ds/{table}/creds" {
			r := h.call(rt.Method, orgB, path, c.body)
			h.want(r, c.status)
			var v credsView
			r.decode(t, &v)
			if v.Source == "workspace" || (v.CredentialID != nil && *v.CredentialID == a.cred.ID) ||
				v.AccountURL == "" || strings.Contains(v.AccountURL, "sekritacct") || v.Container == "sekritbox" {
				t.Errorf("B's /creds for A's workspace name resolved to %+v", v)
			}
			continue
		}
		r := h.call(rt.Method, orgB, path, c.body)
		if r.status != c.status {
			t.Errorf("as B: %s %s: status %d, want %d (%s)", rt.Method, path, r.status, c.status, r.body)
		}
		check("as B: "+key, r)

		if rt.Public {
			continue
		}
		// B's token against A's paths: A's org in the path and the header, or B's header
		// with A's path. Both are 403 and say nothing about A's data.
		pathA := fill(rt.Pattern, orgA)
		for _, header := range []string{orgA, orgB} {
			r := h.do(rt.Method, pathA, c.body, map[string]string{"Authorization": "Bearer " + h.token(orgB), OrgHeader: header})
			if r.status != http.StatusForbidden {
				t.Errorf("B's token, header %s: %s %s: status %d, want 403", header, rt.Method, pathA, r.status)
			}
			check("B's token on A's path: "+key, r)
		}
	}

	// A's credential, default, workspace link and lock are as they were.
	r := h.call("GET", orgA, "/organizations/"+orgA+"/credentials/"+a.cred.ID, nil)
	h.want(r, http.StatusOK)
	var after detailView
	r.decode(t, &after)
	if after.State != "verified" || !after.IsOrgDefault || after.Generation != a.cred.Generation || !after.UpdatedAt.Equal(a.cred.UpdatedAt) {
		t.Errorf("B's calls changed A's credential: before %+v, after %+v", a.cred, after)
	}
	ws := h.workspace(orgA, a.workspace)
	if ws.CredentialID == nil || *ws.CredentialID != a.cred.ID || !ws.Locked {
		t.Errorf("B's calls changed A's workspace: %+v", ws)
	}
	// B's own credential is untouched too, and B's list holds only B's.
	r = h.call("GET", orgB, "/organizations/"+orgB+"/credentials", nil)
	h.want(r, http.StatusOK)
	var list listView
	r.decode(t, &list)
	if len(list.Credentials) != 1 || list.Credentials[0].ID != own.ID {
		t.Errorf("B's list: %+v", list)
	}
}
