package auth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/clocktest"
)

// authenticatorFixture is a platform verifier (local key) and an Entra verifier (keys on a
// loopback server), the two verifiers an Authenticator combines.
type authenticatorFixture struct {
	clk      *clocktest.Clock
	platform *auth.Verifier
	minter   *auth.Minter // platform tokens
	entra    *auth.EntraVerifier
	entraKey entraKey
	keys     *jwksServer
}

func newAuthenticatorFixture(t *testing.T) *authenticatorFixture {
	t.Helper()
	f := &authenticatorFixture{clk: newClock()}
	pk := newTestKey(t)
	var err error
	f.platform, err = auth.NewVerifier(auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: pk.publicPEM, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.minter, err = auth.NewMinter(pk.pkcs8PEM, testIssuer, testAudience, f.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.entraKey = newEntraKey(t, f.clk)
	f.keys = newJWKSServer(t, f.entraKey.pub)
	f.entra = newEntraVerifier(t, f.keys, f.clk, publicLogin, 0)
	return f
}

func (f *authenticatorFixture) platformToken(t *testing.T) string {
	t.Helper()
	tok, err := f.minter.Mint("user-1", []string{"org-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *authenticatorFixture) entraToken(t *testing.T, edit func(jwt.MapClaims)) string {
	t.Helper()
	c := entraToken(publicLogin, customerTenant, f.clk.Now())
	if edit != nil {
		edit(c)
	}
	return f.entraKey.sign(t, c)
}

func TestAuthenticatorAcceptsEitherKind(t *testing.T) {
	f := newAuthenticatorFixture(t)
	a := auth.NewAuthenticator(f.platform, f.entra)
	if !a.WorkloadIdentities() {
		t.Fatal("WorkloadIdentities() = false with an Entra verifier")
	}
	ctx := context.Background()

	c, err := a.Authenticate(ctx, f.platformToken(t))
	if err != nil || c.Kind != auth.CallerUser || c.User.Subject != "user-1" || !c.User.CanAccess("org-1") || c.Workload != (auth.Workload{}) {
		t.Fatalf("platform token: %+v, %v", c, err)
	}
	c, err = a.Authenticate(ctx, f.entraToken(t, nil))
	if err != nil || c.Kind != auth.CallerWorkload || c.Workload != wantMI || c.User.Subject != "" || c.User.CanAccess("org-1") {
		t.Fatalf("Entra token: %+v, %v", c, err)
	}
	if c.Workload.Key() != (auth.WorkloadKey{TenantID: customerTenant, ClientID: miClientID}) {
		t.Errorf("Key() = %+v", c.Workload.Key())
	}
	if got := c.Workload.String(); got != "client id "+miClientID+" in tenant "+customerTenant {
		t.Errorf("String() = %q", got)
	}
}

// TestAuthenticatorRouting: the unverified iss only picks the verifier, which checks
// everything; no token passes by naming the other kind's issuer, and the refusal comes
// from the verifier the token claims to belong to.
func TestAuthenticatorRouting(t *testing.T) {
	f := newAuthenticatorFixture(t)
	on := auth.NewAuthenticator(f.platform, f.entra)
	off := auth.NewAuthenticator(f.platform, nil)

	tests := []struct {
		name  string
		a     *auth.Authenticator
		token string
		cause string
	}{
		{"Entra token with workload identities off", off, f.entraToken(t, nil), "signature"},
		{"Entra-signed token naming the platform issuer", on, f.entraToken(t, func(c jwt.MapClaims) { c["iss"] = testIssuer }), "signature"},
		{"Entra token of another cloud", on, f.entraToken(t, func(c jwt.MapClaims) {
			c["iss"] = "https://login.microsoftonline.us/" + customerTenant + "/v2.0"
		}), "entra token: wrong issuer"},
		{"v1.0 Entra token", on, f.entraToken(t, func(c jwt.MapClaims) { c["ver"] = "1.0" }), "entra token: v1.0 token"},
		{"forged token with a made-up issuer", on, signRS256(t, newTestKey(t).priv, "kid", jwt.MapClaims{"iss": "https://evil.test/"}), "entra token: no key"},
		{"garbage", on, "garbage", "malformed"},
		{"no issuer", on, unsignedToken(t, jwt.MapClaims{"sub": "x"}), "algorithm"},
		{"empty", on, "", "missing token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.a.Authenticate(context.Background(), tt.token)
			if !errors.Is(err, auth.ErrUnauthenticated) || c.Kind != "" {
				t.Fatalf("Authenticate() = %+v, %v; want a refusal", c, err)
			}
			if !strings.Contains(auth.Cause(err), tt.cause) {
				t.Errorf("cause %q, want %q", auth.Cause(err), tt.cause)
			}
			assertNoTokenLeak(t, err, tt.token)
		})
	}
	// With workload identities off, platform tokens work as before.
	if c, err := off.Authenticate(context.Background(), f.platformToken(t)); err != nil || c.Kind != auth.CallerUser {
		t.Errorf("platform token with workload identities off: %+v, %v", c, err)
	}
}

func TestCause(t *testing.T) {
	if got := auth.Cause(errors.New("other")); got != "" {
		t.Errorf("Cause(other) = %q", got)
	}
	if got := auth.Cause(nil); got != "" {
		t.Errorf("Cause(nil) = %q", got)
	}
}

func TestCallerLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "caller", auth.Caller{Kind: auth.CallerWorkload, Workload: wantMI})
	log.Info("y", "caller", auth.Caller{Kind: auth.CallerUser, User: auth.Principal{Subject: "user-1", Orgs: []string{"org-1"}}})
	log.Info("z", "caller", auth.Caller{})
	out := buf.String()
	for _, want := range []string{
		`"caller":{"kind":"workload","workload":{"tenant_id":"` + customerTenant + `","client_id":"` + miClientID + `","object_id":"` + miObjectID + `"}}`,
		`"caller":{"kind":"user","user":{"subject":"user-1","orgs":["org-1"]}}`,
		`"caller":{"kind":"none"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
