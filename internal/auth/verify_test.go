package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyPublicKey(t *testing.T) {
	key := newTestKey(t)
	other := newTestKey(t)
	clk := newClock()
	now := clk.Now()
	v, err := auth.NewVerifier(auth.Config{
		Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: key.publicPEM, Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	good := validClaims(now)
	sign := func(c jwt.MapClaims) string { return signRS256(t, key.priv, "", c) }
	hs256WithPublicKey := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString(key.publicPEM)
		if err != nil {
			t.Fatalf("sign HS256: %v", err)
		}
		return s
	}
	tamperedOrgs := func() string {
		parts := strings.Split(sign(good), ".")
		forged := strings.Split(sign(withClaims(good, func(c jwt.MapClaims) { c["orgs"] = []string{"victim"} })), ".")
		return parts[0] + "." + forged[1] + "." + parts[2]
	}

	tests := []struct {
		name     string
		token    string
		wantOrgs []string // nil: must be refused
		cause    string   // refusals: the cause the error names
	}{
		{"valid", sign(good), []string{"org-1", "org-2"}, ""},
		{"valid with aud array", sign(withClaims(good, func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} })), []string{"org-1", "org-2"}, ""},
		{"expired within leeway", sign(withClaims(good, func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), []string{"org-1", "org-2"}, ""},
		{"nbf within leeway", sign(withClaims(good, func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() })), []string{"org-1", "org-2"}, ""},
		{"no orgs claim", sign(withClaims(good, func(c jwt.MapClaims) { delete(c, "orgs") })), []string{}, ""},

		{"missing", "", nil, "missing token"},
		{"garbage", "not-a-jwt", nil, "malformed"},
		{"three garbage segments", "abc.def.ghi", nil, "malformed"},
		{"too large", strings.Repeat("a", 64<<10), nil, "too large"},
		{"alg none", unsignedToken(t, good), nil, "algorithm"},
		{"HS256 signed with the public key", hs256WithPublicKey(), nil, "algorithm"},
		{"signed by another key", signRS256(t, other.priv, "", good), nil, "signature"},
		{"payload swapped", tamperedOrgs(), nil, "signature"},
		{"wrong issuer", sign(withClaims(good, func(c jwt.MapClaims) { c["iss"] = "https://evil.test/" })), nil, "issuer"},
		{"no issuer", sign(withClaims(good, func(c jwt.MapClaims) { delete(c, "iss") })), nil, "missing iss"},
		{"wrong audience", sign(withClaims(good, func(c jwt.MapClaims) { c["aud"] = "api://other" })), nil, "audience"},
		{"no audience", sign(withClaims(good, func(c jwt.MapClaims) { delete(c, "aud") })), nil, "missing aud"},
		{"expired", sign(withClaims(good, func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), nil, "expired"},
		{"not yet valid", sign(withClaims(good, func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), nil, "not valid yet"},
		{"issued in the future", sign(withClaims(good, func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() })), nil, "issued in the future"},
		{"no exp", sign(withClaims(good, func(c jwt.MapClaims) { delete(c, "exp") })), nil, "missing exp"},
		{"no sub", sign(withClaims(good, func(c jwt.MapClaims) { delete(c, "sub") })), nil, "missing sub"},
		{"orgs not an array", sign(withClaims(good, func(c jwt.MapClaims) { c["orgs"] = "org-1" })), nil, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			if tt.wantOrgs == nil {
				if !errors.Is(err, auth.ErrUnauthenticated) {
					t.Fatalf("Verify() error = %v, want ErrUnauthenticated", err)
				}
				if !strings.Contains(err.Error(), tt.cause) {
					t.Errorf("Verify() error = %q, want cause %q", err, tt.cause)
				}
				assertNoTokenLeak(t, err, tt.token)
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if p.Subject != "user-1" {
				t.Errorf("Subject = %q, want user-1", p.Subject)
			}
			if strings.Join(p.Orgs, ",") != strings.Join(tt.wantOrgs, ",") {
				t.Errorf("Orgs = %q, want %q", p.Orgs, tt.wantOrgs)
			}
		})
	}
}

func TestVerifyLeewayConfigured(t *testing.T) {
	key := newTestKey(t)
	clk := newClock()
	v, err := auth.NewVerifier(auth.Config{
		Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: key.publicPEM,
		Leeway: time.Second, Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	tok := signRS256(t, key.priv, "", withClaims(validClaims(clk.Now()), func(c jwt.MapClaims) {
		c["exp"] = clk.Now().Add(-10 * time.Second).Unix()
	}))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Verify() error = %v, want ErrUnauthenticated with 1s leeway", err)
	}
}

func TestPrincipalCanAccess(t *testing.T) {
	p := auth.Principal{Subject: "user-1", Orgs: []string{"org-1", "*", "Org-3"}}
	tests := []struct {
		org  string
		want bool
	}{
		{"org-1", true},
		{"org-2", false},
		{"org", false},
		{"org-1 ", false},
		{"org-3", false}, // case-sensitive
		{"Org-3", true},
		{"", false},
		{"*", true}, // a literal org id, not a wildcard: it grants nothing else
	}
	for _, tt := range tests {
		if got := p.CanAccess(tt.org); got != tt.want {
			t.Errorf("CanAccess(%q) = %v, want %v", tt.org, got, tt.want)
		}
	}
	if (auth.Principal{}).CanAccess("org-1") {
		t.Error("zero Principal can access org-1")
	}
}

func TestNewVerifierConfig(t *testing.T) {
	key := newTestKey(t)
	base := auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: key.publicPEM}
	tests := []struct {
		name    string
		edit    func(*auth.Config)
		wantErr bool
	}{
		{"public key", func(*auth.Config) {}, false},
		{"https jwks", func(c *auth.Config) { c.PublicKeyPEM, c.JWKSURL = nil, "https://id.example.test/keys" }, false},
		{"http loopback jwks", func(c *auth.Config) { c.PublicKeyPEM, c.JWKSURL = nil, "http://127.0.0.1:8080/keys" }, false},
		{"http localhost jwks", func(c *auth.Config) { c.PublicKeyPEM, c.JWKSURL = nil, "http://localhost:8080/keys" }, false},
		{"http remote jwks", func(c *auth.Config) { c.PublicKeyPEM, c.JWKSURL = nil, "http://id.example.test/keys" }, true},
		{"relative jwks", func(c *auth.Config) { c.PublicKeyPEM, c.JWKSURL = nil, "/keys" }, true},
		{"both key sources", func(c *auth.Config) { c.JWKSURL = "https://id.example.test/keys" }, true},
		{"no key source", func(c *auth.Config) { c.PublicKeyPEM = nil }, true},
		{"no issuer", func(c *auth.Config) { c.Issuer = "" }, true},
		{"no audience", func(c *auth.Config) { c.Audience = "" }, true},
		{"negative leeway", func(c *auth.Config) { c.Leeway = -time.Second }, true},
		{"huge leeway", func(c *auth.Config) { c.Leeway = time.Hour }, true},
		{"negative refresh interval", func(c *auth.Config) { c.JWKSRefreshInterval = -time.Second }, true},
		{"not PEM", func(c *auth.Config) { c.PublicKeyPEM = []byte("hello") }, true},
		{"private key instead of public", func(c *auth.Config) { c.PublicKeyPEM = key.pkcs8PEM }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			_, err := auth.NewVerifier(cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewVerifier() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
