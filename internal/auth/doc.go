// Package auth verifies the API's bearer tokens and, for the local stack, mints them.
//
// The API takes two kinds of token:
//
//   - Platform tokens: RS256 JWTs of the platform's identity provider carrying iss, aud,
//     sub, iat, nbf, exp and an "orgs" claim, a JSON array of the organization ids the token
//     is good for. A [Verifier] checks the signature against either one PEM public key or a
//     JWKS document (cached by kid, refetched at most once per interval), then the
//     registered claims, and yields a [Principal]. [Principal.CanAccess] says whether it may
//     act for an organization: orgs match exactly, and there is no wildcard ("*" is an org
//     id like any other, so no single token can reach every organization by accident).
//   - Workload identities' tokens: Entra ID v2.0 access tokens that a customer's Azure
//     managed identity obtains for the platform API's app registration. An [EntraVerifier]
//     checks them the way Microsoft documents for a multi-tenant API (RS256 with Entra's
//     published keys, cached and refetched like the JWKS above; aud the API's client id;
//     ver 2.0; iss the configured cloud's issuer for the token's own tid) and yields a
//     [Workload]: who the caller is. What it may do is the registry's to say: a workload acts
//     for an organization only if that organization registered its [WorkloadKey].
//
// An [Authenticator] takes either kind and yields a [Caller]. The HTTP layer answers 401
// for any error that matches [ErrUnauthenticated], and 403 when the caller may not act for
// the organization of the request.
//
// A [Minter] signs platform tokens with a local RSA key so the local stack needs no
// identity provider; [Minter.JWKS] publishes its key so the JWKS path can be exercised
// locally too. Entra's tokens are the local stand-in's to issue (internal/dev/localazure).
//
// Tokens never appear in errors or logs: refusals carry a short fixed cause ([Cause]),
// never the token, its claims or header values.
package auth
