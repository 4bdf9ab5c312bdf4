package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/clocktest"
)

const (
	testIssuer   = "https://id.example.test/"
	testAudience = "api://azcreds"
)

func newClock() *clocktest.Clock { return clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// testKey is an RSA key with its PEM forms.
type testKey struct {
	priv      *rsa.PrivateKey
	pkcs8PEM  []byte
	pkcs1PEM  []byte
	publicPEM []byte
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	return newTestKeyBits(t, 2048)
}

func newTestKeyBits(t *testing.T, bits int) testKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("marshal pkcs8: %v", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatalf("marshal pkix: %v", err)
	}
	return testKey{
		priv:      priv,
		pkcs8PEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pkcs1PEM:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}),
		publicPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
	}
}

// validClaims are the claims of a good token at now; tests edit a copy.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":  testIssuer,
		"aud":  testAudience,
		"sub":  "user-1",
		"orgs": []string{"org-1", "org-2"},
		"iat":  now.Unix(),
		"nbf":  now.Unix(),
		"exp":  now.Add(time.Hour).Unix(),
	}
}

func withClaims(c jwt.MapClaims, edit func(jwt.MapClaims)) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	edit(out)
	return out
}

func signRS256(t *testing.T, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// unsignedToken crafts an "alg: none" token by hand, as an attacker would.
func unsignedToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + "."
}

// assertNoTokenLeak fails if err's text quotes any part of tok.
func assertNoTokenLeak(t *testing.T, err error, tok string) {
	t.Helper()
	if tok == "" || err == nil {
		return
	}
	msg := err.Error()
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error %q quotes the token", msg)
		}
	}
}
