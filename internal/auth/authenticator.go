package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Authenticator accepts either kind of bearer token the API takes: the platform's own
// (a [Verifier]) and, when workload identities are on, Entra tokens of customers' managed
// identities (an [EntraVerifier]). It is safe for concurrent use.
type Authenticator struct {
	platform *Verifier
	entra    *EntraVerifier // nil: workload identities are off
	tokens   *tokenCache    // nil: every token is verified every time
}

// AuthenticatorOption changes an [Authenticator] from its defaults.
type AuthenticatorOption func(*Authenticator)

// WithTokenCache remembers up to size verified tokens (DefaultTokenCacheSize by default);
// 0 turns the cache off, so that every request verifies its token.
func WithTokenCache(size int) AuthenticatorOption {
	return func(a *Authenticator) { a.tokens = newTokenCache(size) }
}

// NewAuthenticator combines the two verifiers. entra nil turns workload identities off:
// every token is then checked as a platform token.
//
// Tokens that verify are remembered (see WithTokenCache), so a caller's next request with
// the same token skips the RS256 signature and claims checks, which are most of a warm
// request's work: an entry is used only before the token's exp, only while the verifier's
// keys are the set it was checked with (a JWKS refetch that finds another set, the hourly
// refetch of the set, a restart with a new key file all end it), and only for who the token
// speaks for; what the caller may do (the orgs of a platform token, a workload identity's
// registration in the organization) is decided on every request, as before.
func NewAuthenticator(platform *Verifier, entra *EntraVerifier, opts ...AuthenticatorOption) *Authenticator {
	a := &Authenticator{platform: platform, entra: entra, tokens: newTokenCache(DefaultTokenCacheSize)}
	for _, o := range opts {
		o(a)
	}
	return a
}

// WorkloadIdentities reports whether Entra tokens of workload identities are accepted.
func (a *Authenticator) WorkloadIdentities() bool { return a.entra != nil }

// Authenticate verifies raw and says who it speaks for. A token whose (unverified) iss is
// another than the platform issuer goes to the Entra verifier when workload identities are
// on; every other token (the platform's, one without iss, one that is no JWT) goes to the
// platform verifier. The peek only picks the verifier, which then checks
// everything itself, the issuer included: a token cannot choose a weaker check by lying
// about its issuer. Every refusal matches ErrUnauthenticated.
//
// A Caller from the cache shares its Orgs with other requests: callers only read it.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Caller, error) {
	if a.tokens == nil || raw == "" || len(raw) > maxTokenBytes {
		c, _, err := a.verify(ctx, raw, a.platform.now())
		return c, err
	}
	key := tokenKey(raw)
	now := a.platform.now()
	if e, ok := a.tokens.get(&key); ok {
		if a.holds(&e, now) {
			return e.caller, nil
		}
		a.tokens.drop(&key)
	}
	c, e, err := a.verify(ctx, raw, now)
	if err != nil {
		return Caller{}, err
	}
	if a.holds(&e, now) {
		a.tokens.put(&key, e, now)
	}
	return c, nil
}

// holds reports whether a remembered verification still stands at now: the token is
// within its validity and its verifier's keys are the version it was checked with and
// fresh.
func (a *Authenticator) holds(e *cachedToken, now time.Time) bool {
	if now.Before(e.valid.from) || !now.Before(e.valid.until) {
		return false
	}
	var (
		keys  uint64
		fresh bool
	)
	switch e.verifier {
	case platformVerifier:
		keys, fresh = a.platform.keysVersion(now)
	case entraVerifier:
		if a.entra == nil {
			return false
		}
		keys, fresh = a.entra.keysVersion(now)
	default:
		return false
	}
	return fresh && keys == e.keys
}

// verify checks raw with the verifier its unverified iss picks and returns the entry the
// cache may keep. The entry carries the version of the verifier's keys read before the
// verification: if the keys changed while it ran (a refetch that found another set, the
// first fetch), the entry does not hold and is not kept.
func (a *Authenticator) verify(ctx context.Context, raw string, now time.Time) (Caller, cachedToken, error) {
	if iss := unverifiedIssuer(raw); a.entra != nil && iss != "" && iss != a.platform.issuer {
		keys, _ := a.entra.keysVersion(now)
		w, valid, err := a.entra.verify(ctx, raw)
		if err != nil {
			return Caller{}, cachedToken{}, err
		}
		c := Caller{Kind: CallerWorkload, Workload: w}
		return c, cachedToken{caller: c, valid: valid, verifier: entraVerifier, keys: keys}, nil
	}
	keys, _ := a.platform.keysVersion(now)
	p, valid, err := a.platform.verify(ctx, raw)
	if err != nil {
		return Caller{}, cachedToken{}, err
	}
	c := Caller{Kind: CallerUser, User: p}
	return c, cachedToken{caller: c, valid: valid, verifier: platformVerifier, keys: keys}, nil
}

// unverifiedIssuer returns the iss claim of a JWT without checking anything, or "" when
// raw is not a JWT with a string iss. It is for routing only.
func unverifiedIssuer(raw string) string {
	if len(raw) > maxTokenBytes {
		return ""
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Issuer
}
