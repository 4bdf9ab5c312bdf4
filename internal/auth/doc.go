// Package auth verifies the API's bearer tokens and, for the local stack, mints them.
//
// API tokens are RS256 JWTs carrying iss, aud, sub, iat, nbf, exp and an "orgs" claim: a
// JSON array of the organization ids the token is good for. A [Verifier] checks the
// signature against either one PEM public key or a JWKS document published by the
// platform's identity provider (cached by kid, refetched at most once per interval), then
// the registered claims, and yields a [Principal]. The HTTP layer answers 401 for any
// error that matches [ErrUnauthenticated] and 403 when [Principal.CanAccess] is false for
// the org in the path.
//
// Orgs match exactly. There is no wildcard: "*" in the claim is an org id like any other,
// so no single token can ever reach every organization by accident.
//
// A [Minter] signs tokens with a local RSA key so the local stack needs no identity
// provider; [Minter.JWKS] publishes its key so the JWKS path can be exercised locally too.
//
// Tokens never appear in errors or logs: refusals carry a short fixed cause, never the
// token, its claims or header values.
package auth
