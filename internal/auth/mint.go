package auth

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Minter signs API tokens with a local RSA key, for the local stack and tests, where no
// identity provider exists. It is safe for concurrent use.
type Minter struct {
	key      *rsa.PrivateKey
	kid      string
	issuer   string
	audience string
	now      func() time.Time
}

// NewMinter returns a minter for an RSA private key in PKCS #8 or PKCS #1 PEM. now is the
// clock; nil means time.Now.
func NewMinter(privateKeyPEM []byte, issuer, audience string, now func() time.Time) (*Minter, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("minter: issuer and audience are required")
	}
	key, err := parsePrivateKeyPEM(privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("minter: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Minter{key: key, kid: keyID(&key.PublicKey), issuer: issuer, audience: audience, now: now}, nil
}

// KeyID is the kid of the minter's tokens: the RFC 7638 thumbprint of its public key.
func (m *Minter) KeyID() string { return m.kid }

// JWKS is the key set document that publishes the minter's public key, for serving at a
// Config.JWKSURL.
func (m *Minter) JWKS() []byte {
	j := encodeJWK(&m.key.PublicKey)
	j.Kid, j.Use, j.Alg = m.kid, "sig", jwt.SigningMethodRS256.Alg()
	b, err := json.Marshal(jwkSet{Keys: []jwk{j}})
	if err != nil {
		panic("auth: marshal jwks: " + err.Error()) // plain strings only; cannot fail
	}
	return b
}

// Mint returns an RS256 token for subject, good for orgs, valid from now for ttl.
func (m *Minter) Mint(subject string, orgs []string, ttl time.Duration) (string, error) {
	if subject == "" {
		return "", errors.New("mint: subject is required")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint: ttl %v must be positive", ttl)
	}
	if orgs == nil {
		orgs = []string{} // always a JSON array, never null
	}
	now := m.now().Truncate(time.Second)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.issuer,
			Audience:  jwt.ClaimStrings{m.audience},
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Orgs: slices.Clone(orgs),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = m.kid
	s, err := t.SignedString(m.key)
	if err != nil {
		return "", fmt.Errorf("mint: sign: %w", err)
	}
	return s, nil
}
