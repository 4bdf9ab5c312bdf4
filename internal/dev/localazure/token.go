package localazure

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Token lifetimes, as Entra and the managed identity endpoint grant them.
const (
	accessTokenLifetime = 3599 * time.Second
	miTokenLifetime     = 24 * time.Hour
	// clockSkewAllowance back-dates iat and nbf the way Entra does, so a verifier whose
	// clock runs a little behind ours still accepts a fresh token.
	clockSkewAllowance = 5 * time.Minute
)

// Audiences and issuers the stand-in knows.
const (
	// TokenExchangeAudience is the audience of a managed identity token used as a federated
	// client assertion.
	TokenExchangeAudience = "api://AzureADTokenExchange"
	// GraphAudience is the audience of Microsoft Graph access tokens.
	GraphAudience = "https://graph.microsoft.com"
	// StorageAudience is the audience of Azure Storage access tokens.
	StorageAudience = "https://storage.azure.com"
)

// V1Issuer is the issuer of v1 access tokens for tenantID, the form Azure Storage (and
// Azurite with --oauth basic) requires.
func V1Issuer(tenantID string) string { return "https://sts.windows.net/" + tenantID + "/" }

// V2Issuer is the v2 issuer of tenantID: the issuer of a managed identity's token for the
// token exchange audience, and hence the issuer of its federated identity credentials.
func V2Issuer(tenantID string) string {
	return "https://login.microsoftonline.com/" + tenantID + "/v2.0"
}

// Claims are the claims of a token the stand-in issued.
type Claims struct {
	Issuer   string
	Subject  string
	Audience string
	TenantID string
	ObjectID string
	AppID    string
	// AuthorizedParty is the azp of a v2.0 token: the client id.
	AuthorizedParty string
	// Version is the ver claim, "1.0" or "2.0".
	Version   string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
}

// wireClaims is the JWT payload. aud is a plain string, as Entra writes it for access
// tokens (golang-jwt's RegisteredClaims would write an array).
type wireClaims struct {
	Audience  string `json:"aud"`
	Issuer    string `json:"iss"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	ExpiresAt int64  `json:"exp"`
	Subject   string `json:"sub"`
	TenantID  string `json:"tid"`
	ObjectID  string `json:"oid"`
	AppID     string `json:"appid,omitempty"`
	// AuthorizedParty and AuthorizedPartyACR are v2.0 tokens' client id and how it
	// authenticated (2: a certificate or managed identity); v1.0 tokens say appid instead.
	AuthorizedParty    string `json:"azp,omitempty"`
	AuthorizedPartyACR string `json:"azpacr,omitempty"`
	IdentityType       string `json:"idtyp,omitempty"`
	Version            string `json:"ver"`
	TokenID            string `json:"uti"`
}

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.NotBefore, 0)), nil
}
func (c *wireClaims) GetIssuer() (string, error)  { return c.Issuer, nil }
func (c *wireClaims) GetSubject() (string, error) { return c.Subject, nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

func (c *wireClaims) public() Claims {
	return Claims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, TenantID: c.TenantID,
		ObjectID: c.ObjectID, AppID: c.AppID, AuthorizedParty: c.AuthorizedParty, Version: c.Version,
		IssuedAt: time.Unix(c.IssuedAt, 0), NotBefore: time.Unix(c.NotBefore, 0), ExpiresAt: time.Unix(c.ExpiresAt, 0),
	}
}

// issue signs a token for aud issued by iss to the principal oid of tenant tid.
func (s *Server) issue(iss, aud, tid, oid, appID, version string, lifetime time.Duration) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(lifetime)
	c := &wireClaims{
		Audience: aud, Issuer: iss,
		IssuedAt: now.Add(-clockSkewAllowance).Unix(), NotBefore: now.Add(-clockSkewAllowance).Unix(), ExpiresAt: exp.Unix(),
		Subject: oid, TenantID: tid, ObjectID: oid, AppID: appID, IdentityType: "app", Version: version,
		TokenID: uuid.NewString(),
	}
	raw, err := sign(c, s.key, s.keyID)
	if err != nil {
		return "", time.Time{}, err
	}
	return raw, exp, nil
}

// Token verification failures.
var (
	// ErrTokenInvalid: not a JWT, or not signed by this stand-in.
	ErrTokenInvalid = errors.New("token is malformed or not signed by the stand-in")
	// ErrTokenExpired: signed by the stand-in but outside its validity window.
	ErrTokenExpired = errors.New("token is expired or not yet valid")
)

// VerifyToken checks that raw was signed by this stand-in and is valid now (by the
// server's clock) and returns its claims. The audience is the caller's to check.
// Failures match ErrTokenInvalid or ErrTokenExpired.
func (s *Server) VerifyToken(raw string) (Claims, error) {
	c, err := s.verify(raw)
	if err != nil {
		return Claims{}, err
	}
	return c.public(), nil
}

func (s *Server) verify(raw string) (*wireClaims, error) {
	c := &wireClaims{}
	_, err := jwt.ParseWithClaims(raw, c,
		func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithTimeFunc(s.now),
		jwt.WithIssuedAt(),
	)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return c, fmt.Errorf("verify token: %w", ErrTokenExpired)
	default:
		return nil, fmt.Errorf("verify token: %w: %v", ErrTokenInvalid, err)
	}
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// handleKeys serves the JWKS that verifies every token the stand-in signs.
func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": s.keyID,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}
