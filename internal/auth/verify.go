package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults and limits of [Config].
const (
	DefaultLeeway              = 30 * time.Second
	DefaultJWKSRefreshInterval = time.Minute
	maxLeeway                  = 5 * time.Minute
	// maxTokenBytes refuses absurd headers before any decoding work.
	maxTokenBytes = 16 << 10
)

// Config configures a [Verifier]. Set exactly one of JWKSURL and PublicKeyPEM.
type Config struct {
	// Issuer and Audience must equal the token's iss and (one of its) aud. Required.
	Issuer, Audience string
	// JWKSURL is where the identity provider publishes its keys. It must be https, or
	// http on a loopback host (local stack, tests).
	JWKSURL string
	// PublicKeyPEM is one RSA public key in PKIX PEM ("PUBLIC KEY"); the token's kid is
	// then ignored.
	PublicKeyPEM []byte
	// Leeway absorbs clock skew on exp, nbf and iat. Zero means DefaultLeeway; at most
	// five minutes.
	Leeway time.Duration
	// JWKSRefreshInterval is the least time between two JWKS fetches, however many tokens
	// with unknown kids arrive. Zero means DefaultJWKSRefreshInterval.
	JWKSRefreshInterval time.Duration
	// HTTPClient fetches the JWKS; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks API bearer tokens. It is safe for concurrent use.
type Verifier struct {
	issuer    string
	opts      []jwt.ParserOption
	staticKey *rsa.PublicKey // set when Config.PublicKeyPEM is
	jwks      *jwksCache     // set when Config.JWKSURL is
	now       func() time.Time
	leeway    time.Duration
}

// NewVerifier validates cfg once and returns a verifier. It does no I/O: the JWKS is
// fetched by the first verification that needs it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth config: issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth config: audience is required")
	}
	if (cfg.JWKSURL == "") == (len(cfg.PublicKeyPEM) == 0) {
		return nil, errors.New("auth config: set exactly one of JWKS URL and public key PEM")
	}
	leeway, err := leewayOf(cfg.Leeway)
	if err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	interval := cfg.JWKSRefreshInterval
	switch {
	case interval == 0:
		interval = DefaultJWKSRefreshInterval
	case interval < 0:
		return nil, fmt.Errorf("auth config: negative JWKS refresh interval %v", interval)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	v := &Verifier{
		issuer: cfg.Issuer,
		now:    now,
		leeway: leeway,
		opts: []jwt.ParserOption{
			// RS256 only: refuses alg "none" and HS256 signed with the public key's bytes.
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(now),
		},
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("auth config: %w", err)
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: jwksFetchTimeout}
		}
		v.jwks = &jwksCache{url: cfg.JWKSURL, client: client, now: now, minInterval: interval}
		return v, nil
	}
	key, err := parsePublicKeyPEM(cfg.PublicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	v.staticKey = key
	return v, nil
}

// leewayOf is the configured leeway: DefaultLeeway for zero, at most five minutes.
func leewayOf(leeway time.Duration) (time.Duration, error) {
	switch {
	case leeway == 0:
		return DefaultLeeway, nil
	case leeway < 0 || leeway > maxLeeway:
		return 0, fmt.Errorf("leeway %v outside 0 to %v", leeway, maxLeeway)
	}
	return leeway, nil
}

// checkJWKSURL insists on https, since whoever can rewrite the key set can mint tokens.
// Plain http is allowed on loopback only, where nothing travels over a network.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("JWKS URL must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("JWKS URL must be https (http only on loopback)")
	default:
		return errors.New("JWKS URL must be https")
	}
}

// tokenClaims are the claims an API token carries.
type tokenClaims struct {
	jwt.RegisteredClaims
	Orgs []string `json:"orgs"`
}

// keyError carries a key lookup failure out of the jwt key function with its cause.
type keyError struct {
	cause string
	err   error
}

func (e *keyError) Error() string { return e.cause }
func (e *keyError) Unwrap() error { return e.err }

// Verify checks raw (the bearer token, without the "Bearer " prefix) and returns the
// principal it speaks for. Every refusal matches ErrUnauthenticated; its text names a
// short cause for logs and never contains the token. ctx bounds a JWKS fetch the call may
// have to wait for.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	p, _, err := v.verify(ctx, raw)
	return p, err
}

// verify is Verify that also says when the token is valid, for the cache of verified
// tokens.
func (v *Verifier) verify(ctx context.Context, raw string) (Principal, validity, error) {
	if raw == "" {
		return Principal{}, validity{}, refuse("missing token", nil)
	}
	if len(raw) > maxTokenBytes {
		return Principal{}, validity{}, refuse("token too large", nil)
	}
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	}, v.opts...)
	if err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			return Principal{}, validity{}, refuse(ke.cause, ke.err)
		}
		if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
			return Principal{}, validity{}, refuse(missingClaim(&claims), nil)
		}
		return Principal{}, validity{}, refuse(jwtCause(err), nil)
	}
	if claims.Subject == "" {
		return Principal{}, validity{}, refuse("missing sub", nil)
	}
	return Principal{Subject: claims.Subject, Orgs: claims.Orgs}, validityOf(&claims.RegisteredClaims, v.leeway), nil
}

// keysVersion says which version of the verification keys a verification now would use,
// and whether that version is fresh enough to be used without a refetch: a single PEM key
// never changes (a new key file takes a restart); a JWKS changes when a refetch finds
// another set, and is due for a refetch an hour after the last one.
func (v *Verifier) keysVersion(now time.Time) (uint64, bool) {
	if v.jwks == nil {
		return 0, true
	}
	return v.jwks.version(now)
}

// key picks the verification key. jwt has checked the algorithm is RS256 by now.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	if v.staticKey != nil {
		return v.staticKey, nil
	}
	return keyOf(ctx, v.jwks, t)
}

// keyOf looks the token's kid up in keys. Only the kid of the header is used: a key or key
// URL in the header (jwk, jku, x5u) is never followed, since the token would vouch for
// itself.
func keyOf(ctx context.Context, keys *jwksCache, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, &keyError{cause: "token has no kid"}
	}
	k, err := keys.key(ctx, kid)
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, errUnknownKID), errors.Is(err, errRateLimited):
		return nil, &keyError{cause: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, &keyError{cause: "waiting for jwks", err: err}
	default:
		return nil, &keyError{cause: "jwks unavailable", err: err}
	}
}

// jwtCause maps jwt's errors to fixed causes. jwt's own messages are not used because
// some quote attacker-controlled header values (the alg).
func jwtCause(err error) string {
	for _, c := range []struct {
		err   error
		cause string
	}{
		{jwt.ErrTokenMalformed, "malformed token"},
		{jwt.ErrTokenSignatureInvalid, "invalid signature or algorithm"},
		{jwt.ErrTokenUnverifiable, "unverifiable token"},
		{jwt.ErrTokenExpired, "token expired"},
		{jwt.ErrTokenNotValidYet, "token not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "token issued in the future"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
	} {
		if errors.Is(err, c.err) {
			return c.cause
		}
	}
	return "invalid token"
}

// missingClaim names the required claim a token lacks. jwt reports only that one is
// missing; it checks them after the signature, so the decoded claims are the signer's.
func missingClaim(c *tokenClaims) string {
	switch {
	case c.ExpiresAt == nil:
		return "missing exp"
	case c.Issuer == "":
		return "missing iss"
	case len(c.Audience) == 0:
		return "missing aud"
	default:
		return "required claim missing"
	}
}
