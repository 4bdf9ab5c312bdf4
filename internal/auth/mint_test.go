package auth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	key := newTestKey(t)
	for _, tt := range []struct {
		name string
		pem  []byte
	}{
		{"PKCS8", key.pkcs8PEM},
		{"PKCS1", key.pkcs1PEM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			m, err := auth.NewMinter(tt.pem, testIssuer, testAudience, clk.Now)
			if err != nil {
				t.Fatalf("NewMinter: %v", err)
			}
			pub, err := auth.PublicKeyPEM(tt.pem)
			if err != nil {
				t.Fatalf("PublicKeyPEM: %v", err)
			}
			if !bytes.Equal(pub, key.publicPEM) {
				t.Errorf("PublicKeyPEM() = %s, want %s", pub, key.publicPEM)
			}
			v, err := auth.NewVerifier(auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyPEM: pub, Now: clk.Now})
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			tok, err := m.Mint("user-7", []string{"org-a"}, 15*time.Minute)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}

			// The claims and header are what the brief promises.
			var claims jwt.MapClaims
			parsed, _, err := jwt.NewParser().ParseUnverified(tok, &claims)
			if err != nil {
				t.Fatalf("ParseUnverified: %v", err)
			}
			if parsed.Method.Alg() != "RS256" || parsed.Header["kid"] != m.KeyID() || m.KeyID() == "" {
				t.Errorf("header = %v, want RS256 with kid %q", parsed.Header, m.KeyID())
			}
			now := clk.Now().Unix()
			for name, want := range map[string]any{
				"iss": testIssuer, "sub": "user-7",
				"iat": float64(now), "nbf": float64(now), "exp": float64(now + 15*60),
			} {
				if claims[name] != want {
					t.Errorf("claim %s = %v, want %v", name, claims[name], want)
				}
			}
			if aud, _ := claims.GetAudience(); !slices.Equal(aud, []string{testAudience}) {
				t.Errorf("aud = %v, want %v", aud, []string{testAudience})
			}

			p, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != "user-7" || !p.CanAccess("org-a") || p.CanAccess("org-b") {
				t.Errorf("Verify() = %+v, want user-7 with org-a only", p)
			}

			clk.Advance(16 * time.Minute)
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("Verify() after expiry error = %v, want ErrUnauthenticated", err)
			}
		})
	}
}

func TestMintEmptyOrgsIsArray(t *testing.T) {
	key := newTestKey(t)
	m, err := auth.NewMinter(key.pkcs8PEM, testIssuer, testAudience, nil)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	tok, err := m.Mint("svc", nil, time.Minute)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		t.Fatalf("ParseUnverified: %v", err)
	}
	if orgs, ok := claims["orgs"].([]any); !ok || len(orgs) != 0 {
		t.Errorf("orgs = %#v, want an empty array", claims["orgs"])
	}
}

func TestMintRefuses(t *testing.T) {
	key := newTestKey(t)
	m, err := auth.NewMinter(key.pkcs8PEM, testIssuer, testAudience, nil)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	tests := []struct {
		name    string
		subject string
		ttl     time.Duration
	}{
		{"no subject", "", time.Minute},
		{"zero ttl", "user-1", 0},
		{"negative ttl", "user-1", -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Mint(tt.subject, []string{"org-1"}, tt.ttl); err == nil {
				t.Error("Mint() succeeded, want an error")
			}
		})
	}
}

func TestNewMinterKeys(t *testing.T) {
	small := newTestKeyBits(t, 1024)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate EC key: %v", err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatalf("marshal EC key: %v", err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	key := newTestKey(t)

	tests := []struct {
		name     string
		pem      []byte
		issuer   string
		audience string
	}{
		{"not PEM", []byte("hello"), testIssuer, testAudience},
		{"public key", key.publicPEM, testIssuer, testAudience},
		{"EC key", ecPEM, testIssuer, testAudience},
		{"1024-bit RSA", small.pkcs8PEM, testIssuer, testAudience},
		{"no issuer", key.pkcs8PEM, "", testAudience},
		{"no audience", key.pkcs8PEM, testIssuer, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := auth.NewMinter(tt.pem, tt.issuer, tt.audience, nil); err == nil {
				t.Error("NewMinter() succeeded, want an error")
			}
		})
	}
	if _, err := auth.PublicKeyPEM(ecPEM); err == nil {
		t.Error("PublicKeyPEM(EC key) succeeded, want an error")
	}
}

func TestMinterKeyIDDiffersByKey(t *testing.T) {
	a, b := newTestKey(t), newTestKey(t)
	ma, err := auth.NewMinter(a.pkcs8PEM, testIssuer, testAudience, nil)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	ma1, err := auth.NewMinter(a.pkcs1PEM, testIssuer, testAudience, nil)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	mb, err := auth.NewMinter(b.pkcs8PEM, testIssuer, testAudience, nil)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	if ma.KeyID() != ma1.KeyID() {
		t.Errorf("kid differs between PKCS8 and PKCS1 of one key: %q, %q", ma.KeyID(), ma1.KeyID())
	}
	if ma.KeyID() == mb.KeyID() {
		t.Errorf("two keys share kid %q", ma.KeyID())
	}
}
