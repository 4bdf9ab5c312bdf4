package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Authenticator accepts either kind of bearer token the API takes: the platform's own
// (a [Verifier]) and, when workload identities are on, Entra tokens of customers' managed
// identities (an [EntraVerifier]). It is safe for concurrent use.
type Authenticator struct {
	platform *Verifier
	entra    *EntraVerifier // nil: workload identities are off
}

// NewAuthenticator combines the two verifiers. entra nil turns workload identities off:
// every token is then checked as a platform token.
func NewAuthenticator(platform *Verifier, entra *EntraVerifier) *Authenticator {
	return &Authenticator{platform: platform, entra: entra}
}

// WorkloadIdentities reports whether Entra tokens of workload identities are accepted.
func (a *Authenticator) WorkloadIdentities() bool { return a.entra != nil }

// Authenticate verifies raw and says who it speaks for. A token whose (unverified) iss is
// another than the platform issuer goes to the Entra verifier when workload identities are
// on; every other token (the platform's, one without iss, one that is no JWT) goes to the
// platform verifier. The peek only picks the verifier, which then checks
// everything itself, the issuer included: a token cannot choose a weaker check by lying
// about its issuer. Every refusal matches ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Caller, error) {
	if iss := unverifiedIssuer(raw); a.entra != nil && iss != "" && iss != a.platform.issuer {
		w, err := a.entra.Verify(ctx, raw)
		if err != nil {
			return Caller{}, err
		}
		return Caller{Kind: CallerWorkload, Workload: w}, nil
	}
	p, err := a.platform.Verify(ctx, raw)
	if err != nil {
		return Caller{}, err
	}
	return Caller{Kind: CallerUser, User: p}, nil
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
