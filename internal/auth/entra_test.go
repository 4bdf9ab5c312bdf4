package auth_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/clocktest"
	"github.com/activeloopai/azcreds/internal/config"
)

// Ids of an Entra token as a customer's managed identity gets it for the platform API.
const (
	apiAppID       = "bf01b0aa-723e-4500-96ee-1bc388018396" // the platform API's app: the audience
	customerTenant = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"
	otherTenant    = "1b78be43-50bf-4fd3-8f25-7a03eb996648"
	miClientID     = "7ab7e149-fa92-4d13-b4f5-3968577a83a7" // the managed identity (azp)
	miObjectID     = "a820f16c-a584-4d66-a058-4e948d87ea75" // its service principal (oid)
	publicLogin    = "https://login.microsoftonline.com/"
)

// entraKey is a signing key Entra publishes: its private half and a minter that publishes
// the public half (Minter.JWKS) under its kid.
type entraKey struct {
	priv *rsa.PrivateKey
	pub  *auth.Minter
}

func newEntraKey(t *testing.T, clk *clocktest.Clock) entraKey {
	t.Helper()
	k := newTestKey(t)
	m, err := auth.NewMinter(k.pkcs8PEM, testIssuer, testAudience, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return entraKey{priv: k.priv, pub: m}
}

func (k entraKey) sign(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	return signRS256(t, k.priv, k.pub.KeyID(), c)
}

// entraToken are the claims of a v2.0 access token that Entra issues to a managed identity
// of tenant tid for the platform API at now, as the authority names itself in iss.
func entraToken(authority, tid string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud":    apiAppID,
		"iss":    authority + tid + "/v2.0",
		"iat":    now.Add(-5 * time.Minute).Unix(),
		"nbf":    now.Add(-5 * time.Minute).Unix(),
		"exp":    now.Add(24 * time.Hour).Unix(),
		"azp":    miClientID,
		"azpacr": "2",
		"oid":    miObjectID,
		"sub":    miObjectID,
		"tid":    tid,
		"uti":    "AbCdEfGh",
		"ver":    "2.0",
	}
}

func newEntraVerifier(t *testing.T, srv *jwksServer, clk *clocktest.Clock, authority string, interval time.Duration) *auth.EntraVerifier {
	t.Helper()
	v, err := auth.NewEntraVerifier(auth.EntraConfig{
		Audience: apiAppID, IssuerAuthority: authority, KeysURL: srv.URL + "/common/discovery/v2.0/keys",
		HTTPClient: srv.Client(), KeysRefreshInterval: interval, Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("NewEntraVerifier: %v", err)
	}
	return v
}

func wantWorkload(t *testing.T, v *auth.EntraVerifier, tok string, want auth.Workload) {
	t.Helper()
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if got != want {
		t.Errorf("Verify() = %+v, want %+v", got, want)
	}
}

func wantEntraRefused(t *testing.T, v *auth.EntraVerifier, tok, cause string) {
	t.Helper()
	_, err := v.Verify(context.Background(), tok)
	if !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Verify() error = %v, want ErrUnauthenticated", err)
	}
	if !strings.HasPrefix(auth.Cause(err), "entra token: ") || !strings.Contains(auth.Cause(err), cause) {
		t.Errorf("Verify() cause = %q, want an Entra cause naming %q", auth.Cause(err), cause)
	}
	assertNoTokenLeak(t, err, tok)
}

var wantMI = auth.Workload{TenantID: customerTenant, ClientID: miClientID, ObjectID: miObjectID}

// TestEntraVerify holds the verifier to Microsoft's rules for a multi-tenant API's v2.0
// tokens, one claim at a time.
func TestEntraVerify(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	key := newEntraKey(t, clk)
	srv := newJWKSServer(t, key.pub)
	v := newEntraVerifier(t, srv, clk, publicLogin, 0)

	good := entraToken(publicLogin, customerTenant, now)
	edit := func(f func(jwt.MapClaims)) jwt.MapClaims { return withClaims(good, f) }
	sign := func(c jwt.MapClaims) string { return key.sign(t, c) }
	withHeader := func(method jwt.SigningMethod, signKey any, kid string) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, good)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(signKey)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return s
	}
	kid := key.pub.KeyID()
	tampered := func() string {
		parts := strings.Split(sign(good), ".")
		forged := strings.Split(sign(edit(func(c jwt.MapClaims) { c["azp"] = "00000000-0000-0000-0000-000000000001" })), ".")
		return parts[0] + "." + forged[1] + "." + parts[2]
	}
	v1 := jwt.MapClaims{
		"aud": apiAppID, "iss": "https://sts.windows.net/" + customerTenant + "/",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"appid": miClientID, "appidacr": "2", "oid": miObjectID, "sub": miObjectID, "tid": customerTenant, "ver": "1.0",
	}

	accepted := []struct {
		name  string
		token string
	}{
		{"valid", sign(good)},
		{"aud as an array naming the API", sign(edit(func(c jwt.MapClaims) { c["aud"] = []string{apiAppID} }))},
		{"expired within leeway", sign(edit(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }))},
		{"nbf within leeway", sign(edit(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() }))},
		{"app roles", sign(edit(func(c jwt.MapClaims) { c["roles"] = []string{"Workload.Access"} }))},
		{"idtyp app", sign(edit(func(c jwt.MapClaims) { c["idtyp"] = "app" }))},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) { wantWorkload(t, v, tt.token, wantMI) })
	}

	refused := []struct {
		name, token, cause string
	}{
		{"missing", "", "missing token"},
		{"garbage", "not-a-jwt", "malformed"},
		{"too large", strings.Repeat("a", 64<<10), "too large"},

		// Only RS256 with a key Entra publishes.
		{"alg none", unsignedToken(t, good), "algorithm"},
		{"HS256 keyed with the JWKS document", withHeader(jwt.SigningMethodHS256, key.pub.JWKS(), kid), "algorithm"},
		{"PS256 with Entra's key", withHeader(jwt.SigningMethodPS256, key.priv, kid), "algorithm"},
		{"RS512 with Entra's key", withHeader(jwt.SigningMethodRS512, key.priv, kid), "algorithm"},
		{"another key under Entra's kid", withHeader(jwt.SigningMethodRS256, newTestKey(t).priv, kid), "signature"},
		{"no kid", signRS256(t, key.priv, "", good), "no kid"},
		{"payload swapped", tampered(), "signature"},

		// v2.0 only.
		{"v1.0 token", sign(v1), "v1.0 token"},
		{"v1.0 claims with a v2.0 issuer", sign(withClaims(v1, func(c jwt.MapClaims) { c["iss"] = good["iss"] })), "v1.0 token"},
		{"no ver", sign(edit(func(c jwt.MapClaims) { delete(c, "ver") })), "missing ver"},
		{"ver 3.0", sign(edit(func(c jwt.MapClaims) { c["ver"] = "3.0" })), "unsupported token version"},

		// The issuer is the cloud's, for the token's own tenant, which must be a GUID.
		{"issuer of another tenant", sign(edit(func(c jwt.MapClaims) { c["iss"] = publicLogin + otherTenant + "/v2.0" })), "wrong issuer"},
		{"tid of another tenant", sign(edit(func(c jwt.MapClaims) { c["tid"] = otherTenant })), "wrong issuer"},
		{"v1.0 issuer", sign(edit(func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/" + customerTenant + "/" })), "wrong issuer"},
		{"issuer with a trailing slash", sign(edit(func(c jwt.MapClaims) { c["iss"] = publicLogin + customerTenant + "/v2.0/" })), "wrong issuer"},
		{"issuer of a look-alike host", sign(edit(func(c jwt.MapClaims) {
			c["iss"] = "https://login.microsoftonline.com.example.net/" + customerTenant + "/v2.0"
		})), "wrong issuer"},
		{"no issuer", sign(edit(func(c jwt.MapClaims) { delete(c, "iss") })), "wrong issuer"},
		{"tid common", sign(edit(func(c jwt.MapClaims) {
			c["tid"], c["iss"] = "common", publicLogin+"common/v2.0"
		})), "tid is not a GUID"},
		{"tid organizations", sign(edit(func(c jwt.MapClaims) {
			c["tid"], c["iss"] = "organizations", publicLogin+"organizations/v2.0"
		})), "tid is not a GUID"},
		{"tid in upper case", sign(edit(func(c jwt.MapClaims) {
			c["tid"], c["iss"] = strings.ToUpper(customerTenant), publicLogin+strings.ToUpper(customerTenant)+"/v2.0"
		})), "tid is not a GUID"},
		{"tid in braces", sign(edit(func(c jwt.MapClaims) {
			c["tid"], c["iss"] = "{"+customerTenant+"}", publicLogin+"{"+customerTenant+"}/v2.0"
		})), "tid is not a GUID"},
		{"tid with a path", sign(edit(func(c jwt.MapClaims) {
			c["tid"], c["iss"] = customerTenant+"/x", publicLogin+customerTenant+"/x/v2.0"
		})), "tid is not a GUID"},
		{"no tid", sign(edit(func(c jwt.MapClaims) { delete(c, "tid") })), "tid is not a GUID"},

		// The audience is the API's client id, exactly.
		{"another app's audience", sign(edit(func(c jwt.MapClaims) { c["aud"] = "00000000-0000-0000-0000-000000000002" })), "wrong audience"},
		{"the API's id as an api:// URI", sign(edit(func(c jwt.MapClaims) { c["aud"] = "api://" + apiAppID })), "wrong audience"},
		{"storage's audience", sign(edit(func(c jwt.MapClaims) { c["aud"] = "https://storage.azure.com" })), "wrong audience"},
		{"no audience", sign(edit(func(c jwt.MapClaims) { delete(c, "aud") })), "missing aud"},

		// Times, with the default leeway of 30 s.
		{"expired", sign(edit(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "token expired"},
		{"not yet valid", sign(edit(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), "not valid yet"},
		{"issued in the future", sign(edit(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() })), "issued in the future"},
		{"no exp", sign(edit(func(c jwt.MapClaims) { delete(c, "exp") })), "missing exp"},

		// The caller: an app (managed identity) with its client and object id.
		{"no azp", sign(edit(func(c jwt.MapClaims) { delete(c, "azp") })), "azp is not a GUID"},
		{"appid instead of azp", sign(edit(func(c jwt.MapClaims) { delete(c, "azp"); c["appid"] = miClientID })), "azp is not a GUID"},
		{"azp not a GUID", sign(edit(func(c jwt.MapClaims) { c["azp"] = "my-identity" })), "azp is not a GUID"},
		{"no oid", sign(edit(func(c jwt.MapClaims) { delete(c, "oid") })), "oid is not a GUID"},
		{"delegated token (scp)", sign(edit(func(c jwt.MapClaims) { c["scp"] = "user_impersonation" })), "delegated"},
		{"idtyp user", sign(edit(func(c jwt.MapClaims) { c["idtyp"] = "user" })), "delegated"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) { wantEntraRefused(t, v, tt.token, tt.cause) })
	}
	wantFetches(t, srv, 1) // one fetch of the keys served every case
}

// TestEntraIssuerPerCloud: the issuer is the configured cloud's, as Entra writes it into
// v2.0 tokens there, for the token's tenant. A token of another cloud, or naming the China
// authority host where China's tokens name login.partner.microsoftonline.cn, is refused.
func TestEntraIssuerPerCloud(t *testing.T) {
	clouds := config.Clouds()
	if len(clouds) < 3 {
		t.Fatalf("config knows %d clouds", len(clouds))
	}
	for _, cl := range clouds {
		t.Run(cl.Name, func(t *testing.T) {
			clk := newClock()
			key := newEntraKey(t, clk)
			srv := newJWKSServer(t, key.pub)
			v := newEntraVerifier(t, srv, clk, cl.TokenIssuerAuthority, 0)

			for _, tid := range []string{customerTenant, otherTenant} {
				c := entraToken(cl.TokenIssuerAuthority, tid, clk.Now())
				wantWorkload(t, v, key.sign(t, c), auth.Workload{TenantID: tid, ClientID: miClientID, ObjectID: miObjectID})
			}
			for _, other := range clouds {
				if other.TokenIssuerAuthority == cl.TokenIssuerAuthority {
					continue
				}
				wantEntraRefused(t, v, key.sign(t, entraToken(other.TokenIssuerAuthority, customerTenant, clk.Now())), "wrong issuer")
			}
			if cl.AuthorityHost != cl.TokenIssuerAuthority {
				wantEntraRefused(t, v, key.sign(t, entraToken(cl.AuthorityHost, customerTenant, clk.Now())), "wrong issuer")
			}
		})
	}
	china, _ := config.CloudByName(config.CloudChina)
	if china.TokenIssuerAuthority != "https://login.partner.microsoftonline.cn/" {
		t.Errorf("China's v2.0 issuer authority is %q", china.TokenIssuerAuthority)
	}
}

// TestEntraKeyRotation: a token signed with a key Entra has just published makes the
// verifier fetch the keys once, no more often than the refresh interval; a withdrawn key
// stops working at the next fetch.
func TestEntraKeyRotation(t *testing.T) {
	clk := newClock()
	oldKey, newKey := newEntraKey(t, clk), newEntraKey(t, clk)
	srv := newJWKSServer(t, oldKey.pub)
	v := newEntraVerifier(t, srv, clk, publicLogin, 0)
	token := func(k entraKey) string { return k.sign(t, entraToken(publicLogin, customerTenant, clk.Now())) }

	wantFetches(t, srv, 0) // NewEntraVerifier does no I/O
	wantWorkload(t, v, token(oldKey), wantMI)
	wantFetches(t, srv, 1)

	// Entra publishes a new key and signs with it. Within the interval of the last fetch
	// the new kid waits; once the interval has passed, one fetch finds it.
	srv.serve(t, oldKey.pub, newKey.pub)
	wantEntraRefused(t, v, token(newKey), "rate limited")
	wantFetches(t, srv, 1)

	clk.Advance(auth.DefaultJWKSRefreshInterval)
	for range 3 {
		wantWorkload(t, v, token(newKey), wantMI)
		wantWorkload(t, v, token(oldKey), wantMI)
	}
	wantFetches(t, srv, 2)

	// The old key is withdrawn: an unknown kid makes the next fetch, after which the old
	// key no longer verifies.
	srv.serve(t, newKey.pub)
	clk.Advance(auth.DefaultJWKSRefreshInterval)
	wantEntraRefused(t, v, signRS256(t, newTestKey(t).priv, "unknown-kid", entraToken(publicLogin, customerTenant, clk.Now())), "no key")
	wantFetches(t, srv, 3)
	wantEntraRefused(t, v, token(oldKey), "no key")
	wantWorkload(t, v, token(newKey), wantMI)
	wantFetches(t, srv, 3)
}

// TestEntraUnknownKey: a token signed by a key Entra never published is refused, whether it
// names a kid of its own (one fetch, then rate limited) or Entra's (no fetch at all).
func TestEntraUnknownKey(t *testing.T) {
	clk := newClock()
	key, rogue := newEntraKey(t, clk), newEntraKey(t, clk)
	srv := newJWKSServer(t, key.pub)
	v := newEntraVerifier(t, srv, clk, publicLogin, 0)
	claims := entraToken(publicLogin, customerTenant, clk.Now())

	wantEntraRefused(t, v, rogue.sign(t, claims), "no key for the token's kid")
	wantFetches(t, srv, 1)
	wantEntraRefused(t, v, rogue.sign(t, claims), "rate limited")
	wantEntraRefused(t, v, signRS256(t, rogue.priv, key.pub.KeyID(), claims), "signature")
	wantWorkload(t, v, key.sign(t, claims), wantMI)
	wantFetches(t, srv, 1)
}

// TestEntraUnknownKIDFloodIsBounded: tokens with made-up kids, however many and however
// concurrent, cost Entra's key endpoint one fetch per refresh interval.
func TestEntraUnknownKIDFloodIsBounded(t *testing.T) {
	clk := newClock()
	key := newEntraKey(t, clk)
	forger := newTestKey(t)
	srv := newJWKSServer(t, key.pub)
	interval := 10 * time.Minute
	v := newEntraVerifier(t, srv, clk, publicLogin, interval)

	flood := func() {
		t.Helper()
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for i := range 200 {
			tok := signRS256(t, forger.priv, fmt.Sprintf("forged-%d", i), entraToken(publicLogin, customerTenant, clk.Now()))
			wg.Go(func() {
				if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrUnauthenticated) {
					accepted.Add(1)
				}
			})
		}
		wg.Wait()
		if n := accepted.Load(); n != 0 {
			t.Fatalf("%d forged tokens were not refused", n)
		}
	}

	flood()
	wantFetches(t, srv, 1)
	wantWorkload(t, v, key.sign(t, entraToken(publicLogin, customerTenant, clk.Now())), wantMI)
	wantFetches(t, srv, 1)

	clk.Advance(time.Minute) // the default interval, but this verifier's is longer
	flood()
	wantFetches(t, srv, 1)

	clk.Advance(interval)
	flood()
	wantFetches(t, srv, 2)
}

func TestEntraLeewayConfigured(t *testing.T) {
	clk := newClock()
	key := newEntraKey(t, clk)
	srv := newJWKSServer(t, key.pub)
	v, err := auth.NewEntraVerifier(auth.EntraConfig{Audience: apiAppID, IssuerAuthority: publicLogin,
		KeysURL: srv.URL + "/keys", HTTPClient: srv.Client(), Leeway: time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := entraToken(publicLogin, customerTenant, clk.Now())
	c["exp"] = clk.Now().Add(-10 * time.Second).Unix()
	wantEntraRefused(t, v, key.sign(t, c), "token expired")
}

func TestNewEntraVerifierConfig(t *testing.T) {
	base := auth.EntraConfig{Audience: apiAppID, IssuerAuthority: publicLogin, KeysURL: publicLogin + "common/discovery/v2.0/keys"}
	tests := []struct {
		name    string
		edit    func(*auth.EntraConfig)
		wantErr bool
	}{
		{"public cloud", func(*auth.EntraConfig) {}, false},
		{"local stand-in", func(c *auth.EntraConfig) {
			c.IssuerAuthority, c.KeysURL = "https://127.0.0.1:7443/", "https://127.0.0.1:7443/common/discovery/v2.0/keys"
		}, false},
		{"http loopback keys", func(c *auth.EntraConfig) { c.KeysURL = "http://127.0.0.1:9/keys" }, false},
		{"no audience", func(c *auth.EntraConfig) { c.Audience = "" }, true},
		{"audience an api:// URI", func(c *auth.EntraConfig) { c.Audience = "api://" + apiAppID }, true},
		{"audience in upper case", func(c *auth.EntraConfig) { c.Audience = strings.ToUpper(apiAppID) }, true},
		{"no issuer authority", func(c *auth.EntraConfig) { c.IssuerAuthority = "" }, true},
		{"issuer authority without its slash", func(c *auth.EntraConfig) { c.IssuerAuthority = "https://login.microsoftonline.com" }, true},
		{"http issuer authority", func(c *auth.EntraConfig) { c.IssuerAuthority = "http://login.microsoftonline.com/" }, true},
		{"no keys URL", func(c *auth.EntraConfig) { c.KeysURL = "" }, true},
		{"http remote keys", func(c *auth.EntraConfig) { c.KeysURL = "http://login.microsoftonline.com/common/discovery/v2.0/keys" }, true},
		{"huge leeway", func(c *auth.EntraConfig) { c.Leeway = time.Hour }, true},
		{"negative refresh interval", func(c *auth.EntraConfig) { c.KeysRefreshInterval = -time.Second }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			if _, err := auth.NewEntraVerifier(cfg); (err != nil) != tt.wantErr {
				t.Fatalf("NewEntraVerifier() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
