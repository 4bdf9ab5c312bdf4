package localazure

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestOpenIDConfiguration(t *testing.T) {
	f := newFixture(t, nil)

	m := f.mustStatus(f.do(http.MethodGet, "/"+custTenant+"/v2.0/.well-known/openid-configuration", nil, nil), http.StatusOK).json(t)
	base := f.srv.URL + "/" + custTenant
	for key, want := range map[string]string{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"jwks_uri":               base + "/discovery/v2.0/keys",
	} {
		if m[key] != want {
			t.Errorf("%s = %v, want %s", key, m[key], want)
		}
	}

	r := f.mustStatus(f.do(http.MethodGet, "/"+otherTenant+"/v2.0/.well-known/openid-configuration", nil, nil), http.StatusBadRequest)
	if code := entraCode(t, r); code != 90002 {
		t.Errorf("unknown tenant: code %d, want 90002", code)
	}
	if e := r.json(t)["error"]; e != "invalid_tenant" {
		t.Errorf("unknown tenant: error %v, want invalid_tenant", e)
	}
}

func TestKeysVerifyIssuedTokens(t *testing.T) {
	f := newFixture(t, nil)
	keys := f.mustStatus(f.do(http.MethodGet, "/"+homeTenant+"/discovery/v2.0/keys", nil, nil), http.StatusOK).json(t)
	list := keys["keys"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["kid"] != f.s.keyID {
		t.Fatalf("keys = %v, want one key with kid %s", list, f.s.keyID)
	}
	tok, err := jwt.Parse(f.miToken(StorageAudience), func(*jwt.Token) (any, error) { return &f.s.key.PublicKey, nil },
		jwt.WithTimeFunc(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != f.s.keyID {
		t.Errorf("token kid = %v, want %s", tok.Header["kid"], f.s.keyID)
	}
}

func TestManagedIdentityToken(t *testing.T) {
	f := newFixture(t, nil)
	good := map[string]string{"X-IDENTITY-HEADER": DefaultIdentityHeader}
	path := func(q string) string { return "/msi/token?api-version=2019-08-01&" + q }

	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
	}{
		{"no identity header", path("resource=https://storage.azure.com"), nil, http.StatusUnauthorized},
		{"wrong identity header", path("resource=https://storage.azure.com"), map[string]string{"X-IDENTITY-HEADER": "nope"}, http.StatusUnauthorized},
		{"wrong client id", path("resource=https://storage.azure.com&client_id=" + custTenant), good, http.StatusBadRequest},
		{"resource id form", path("resource=https://storage.azure.com&mi_res_id=/subscriptions/x"), good, http.StatusBadRequest},
		{"no resource", path(""), good, http.StatusBadRequest},
		{"wrong api version", "/msi/token?api-version=2018-02-01&resource=x", good, http.StatusBadRequest},
		{"by client id", path("resource=https://storage.azure.com&client_id=" + miClientID), good, http.StatusOK},
		{"by principal id", path("resource=https://storage.azure.com&principal_id=" + miObjectID), good, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(http.MethodGet, tt.path, nil, tt.header)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
		})
	}

	t.Run("claims", func(t *testing.T) {
		for _, tt := range []struct{ resource, iss string }{
			{TokenExchangeAudience, "https://login.microsoftonline.com/" + homeTenant + "/v2.0"},
			{StorageAudience, "https://sts.windows.net/" + homeTenant + "/"},
			{GraphAudience, "https://sts.windows.net/" + homeTenant + "/"},
		} {
			r := f.mustStatus(f.do(http.MethodGet, path("client_id="+miClientID+"&resource="+url.QueryEscape(tt.resource)), nil, good), http.StatusOK)
			m := r.json(t)
			wantExp := f.clock.Now().Add(miTokenLifetime).Unix()
			if m["expires_on"] != itoa(int(wantExp)) || m["resource"] != tt.resource || m["token_type"] != "Bearer" || m["client_id"] != miClientID {
				t.Errorf("%s: response %v", tt.resource, m)
			}
			c, err := f.s.VerifyToken(m["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != tt.iss || c.Audience != tt.resource || c.Subject != miObjectID || c.ObjectID != miObjectID || c.TenantID != homeTenant {
				t.Errorf("%s: claims %+v", tt.resource, c)
			}
		}
	})

	t.Run("configured header", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.IdentityHeader = "s3cret" })
		f.mustStatus(f.do(http.MethodGet, path("resource=x"), nil, good), http.StatusUnauthorized)
		f.mustStatus(f.do(http.MethodGet, path("resource=x"), nil, map[string]string{"X-IDENTITY-HEADER": "s3cret"}), http.StatusOK)
	})
}

func TestTokenRules(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.FICPropagationDelay = time.Minute })
	exchange := f.miToken(TokenExchangeAudience)

	installed := f.createApp("installed")
	f.installSP(custTenant, installed.appID)
	notInstalled := f.createApp("not-installed")

	// An app without federated credentials, installed in the customer tenant.
	r := f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications",
		map[string]any{"displayName": "bare", "signInAudience": "AzureADMultipleOrgs"}), http.StatusCreated)
	bare := r.json(t)["appId"].(string)
	f.installSP(custTenant, bare)

	// An assertion signed by another key.
	otherKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": V2Issuer(homeTenant), "sub": miObjectID, "aud": TokenExchangeAudience,
		"exp": f.clock.Now().Add(time.Hour).Unix(),
	}).SignedString(otherKey)
	if err != nil {
		t.Fatal(err)
	}

	// Let the FICs created above propagate; later tests add a fresh one.
	f.clock.Advance(time.Minute)

	tokenPath := func(tenant string) string { return "/" + tenant + "/oauth2/v2.0/token" }
	tests := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   int
	}{
		{"unknown tenant", otherTenant, tokenForm(installed.appID, exchange, StorageAudience+"/.default"), 400, 90002},
		{"unknown app", custTenant, tokenForm(custTenant, exchange, StorageAudience+"/.default"), 400, 700016},
		{"SP not installed in tenant", custTenant, tokenForm(notInstalled.appID, exchange, StorageAudience+"/.default"), 400, 700016},
		{"SP not installed in home tenant", homeTenant, tokenForm(installed.appID, exchange, StorageAudience+"/.default"), 400, 700016},
		{"no assertion", custTenant, tokenForm(installed.appID, "", StorageAudience+"/.default"), 401, 7000218},
		{"malformed assertion", custTenant, tokenForm(installed.appID, "not-a-jwt", StorageAudience+"/.default"), 400, 50027},
		{"assertion signed by someone else", custTenant, tokenForm(installed.appID, forged, StorageAudience+"/.default"), 401, 700213},
		{"assertion for the wrong audience", custTenant, tokenForm(installed.appID, f.miToken(StorageAudience), StorageAudience+"/.default"), 401, 700213},
		{"app without federated credentials", custTenant, tokenForm(bare, exchange, StorageAudience+"/.default"), 401, 70025},
		{"scope without /.default", custTenant, tokenForm(installed.appID, exchange, StorageAudience), 400, 1002012},
		{"no grant type", custTenant, url.Values{"client_id": {installed.appID}}, 400, 900144},
		{"wrong grant type", custTenant, url.Values{"grant_type": {"password"}, "client_id": {installed.appID}}, 400, 70003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(http.MethodPost, tokenPath(tt.tenant), tt.form, map[string]string{"client-request-id": "corr-1"})
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if code := entraCode(t, r); code != tt.code {
				t.Errorf("code = AADSTS%d, want AADSTS%d; body %s", code, tt.code, r.body)
			}
			if cid := r.json(t)["correlation_id"]; cid != "corr-1" {
				t.Errorf("correlation_id = %v, want the client-request-id", cid)
			}
		})
	}

	t.Run("success", func(t *testing.T) {
		spID := f.installSP(custTenant, installed.appID)
		for _, aud := range []string{StorageAudience, GraphAudience} {
			r := f.mustStatus(f.do(http.MethodPost, tokenPath(custTenant), tokenForm(installed.appID, exchange, aud+"/.default"), nil), http.StatusOK)
			m := r.json(t)
			if m["token_type"] != "Bearer" || m["expires_in"] != float64(3599) || m["ext_expires_in"] != float64(3599) {
				t.Errorf("response %v", m)
			}
			c, err := f.s.VerifyToken(m["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			want := Claims{
				Issuer: "https://sts.windows.net/" + custTenant + "/", Subject: spID, Audience: aud,
				TenantID: custTenant, ObjectID: spID, AppID: installed.appID, Version: "1.0",
				IssuedAt: f.clock.Now().Add(-clockSkewAllowance), NotBefore: f.clock.Now().Add(-clockSkewAllowance),
				ExpiresAt: f.clock.Now().Add(accessTokenLifetime),
			}
			if !c.IssuedAt.Equal(want.IssuedAt) || !c.NotBefore.Equal(want.NotBefore) || !c.ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("times: got %v %v %v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
			}
			c.IssuedAt, c.NotBefore, c.ExpiresAt = want.IssuedAt, want.NotBefore, want.ExpiresAt
			if c != want {
				t.Errorf("claims = %+v, want %+v", c, want)
			}
		}
	})

	t.Run("new federated credential propagates", func(t *testing.T) {
		r := f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications",
			map[string]any{"displayName": "fresh", "signInAudience": "AzureADMultipleOrgs"}), http.StatusCreated)
		fresh := r.json(t)
		f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications/"+fresh["id"].(string)+"/federatedIdentityCredentials",
			map[string]any{"name": "backend", "issuer": V2Issuer(homeTenant), "subject": miObjectID, "audiences": []string{TokenExchangeAudience}}),
			http.StatusCreated)
		f.installSP(custTenant, fresh["appId"].(string))
		form := tokenForm(fresh["appId"].(string), exchange, StorageAudience+"/.default")

		r = f.mustStatus(f.do(http.MethodPost, tokenPath(custTenant), form, nil), http.StatusBadRequest)
		if code := entraCode(t, r); code != 70021 {
			t.Errorf("young FIC: AADSTS%d, want AADSTS70021", code)
		}
		f.clock.Advance(time.Minute)
		f.mustStatus(f.do(http.MethodPost, tokenPath(custTenant), form, nil), http.StatusOK)
	})

	t.Run("expired assertion", func(t *testing.T) {
		f.clock.Advance(miTokenLifetime + time.Second)
		r := f.mustStatus(f.do(http.MethodPost, tokenPath(custTenant), tokenForm(installed.appID, exchange, StorageAudience+"/.default"), nil), http.StatusUnauthorized)
		if code := entraCode(t, r); code != 700024 {
			t.Errorf("code = AADSTS%d, want AADSTS700024", code)
		}
	})
}

func TestVerifyToken(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.miToken(StorageAudience)
	if _, err := f.s.VerifyToken(tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if _, err := f.s.VerifyToken("garbage"); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("garbage: err = %v, want ErrTokenInvalid", err)
	}
	other := newFixture(t, nil)
	if _, err := other.s.VerifyToken(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("another server's token: err = %v, want ErrTokenInvalid", err)
	}
	f.clock.Advance(miTokenLifetime)
	if _, err := f.s.VerifyToken(tok); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired: err = %v, want ErrTokenExpired", err)
	}
}
