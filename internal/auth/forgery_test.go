package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/auth"
)

// TestJWKSRefusesForgeries holds the JWKS path (the one used in Azure) to what the
// public-key path is held to in TestVerifyPublicKey: a forged token naming a kid the
// verifier knows is refused however it is forged, and the token's own header never
// chooses where keys come from.
func TestJWKSRefusesForgeries(t *testing.T) {
	clk := newClock()
	trusted := newTestKey(t)
	m, err := auth.NewMinter(trusted.pkcs8PEM, testIssuer, testAudience, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, m)
	v := newJWKSVerifier(t, srv, clk, time.Minute)
	kid := m.KeyID()
	wantAccepted(t, v, mint(t, m)) // the set is fetched and the kid known from here on

	// An attacker's key server: a verifier that followed jku or x5u would fetch from it.
	var attackerFetches atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerFetches.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(attacker.Close)
	evil := newTestKey(t)
	good := validClaims(clk.Now())
	good["orgs"] = []string{"org-1"}

	withHeader := func(method jwt.SigningMethod, key any, header map[string]any) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, good)
		for k, val := range header {
			tok.Header[k] = val
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return s
	}
	unsignedWithKID := func() string {
		enc := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		return enc(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + enc(good) + "."
	}
	evilJWK := map[string]any{"kty": "RSA", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(evil.priv.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1})}

	tests := []struct {
		name, token, cause string
	}{
		{"alg none with a known kid", unsignedWithKID(), "algorithm"},
		{"HS256 with the JWKS document as secret", withHeader(jwt.SigningMethodHS256, m.JWKS(), map[string]any{"kid": kid}), "algorithm"},
		{"HS256 with the public key PEM as secret", withHeader(jwt.SigningMethodHS256, trusted.publicPEM, map[string]any{"kid": kid}), "algorithm"},
		{"RS512 with the trusted key", withHeader(jwt.SigningMethodRS512, trusted.priv, map[string]any{"kid": kid}), "algorithm"},
		{"PS256 with the trusted key", withHeader(jwt.SigningMethodPS256, trusted.priv, map[string]any{"kid": kid}), "algorithm"},
		{"another key under the known kid", withHeader(jwt.SigningMethodRS256, evil.priv, map[string]any{"kid": kid}), "signature"},
		{"another key embedded as jwk", withHeader(jwt.SigningMethodRS256, evil.priv, map[string]any{"kid": kid, "jwk": evilJWK}), "signature"},
		{"another key behind jku", withHeader(jwt.SigningMethodRS256, evil.priv, map[string]any{"kid": kid, "jku": attacker.URL + "/keys"}), "signature"},
		{"another key behind x5u", withHeader(jwt.SigningMethodRS256, evil.priv, map[string]any{"kid": kid, "x5u": attacker.URL + "/cert"}), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRefused(t, v, tt.token, tt.cause) })
	}
	if n := attackerFetches.Load(); n != 0 {
		t.Errorf("the verifier fetched from a URL in the token header %d times", n)
	}
	wantFetches(t, srv, 1) // forged tokens with a known kid cost no refetch either
}
