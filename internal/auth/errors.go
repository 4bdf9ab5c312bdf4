package auth

import "errors"

// ErrUnauthenticated matches every refusal of [Verifier.Verify], [EntraVerifier.Verify] and
// [Authenticator.Authenticate]. The HTTP layer maps it to
// 401 and logs the error's text, which names a short cause and never the token.
var ErrUnauthenticated = errors.New("unauthenticated")

// refusal is a refused token: a fixed cause for logs and, where one exists, the underlying
// error (a JWKS fetch failure, a cancelled context). It never holds token material.
type refusal struct {
	cause string
	err   error
}

func refuse(cause string, err error) error { return &refusal{cause: cause, err: err} }

func (r *refusal) Error() string {
	if r.err != nil {
		return "unauthenticated: " + r.cause + ": " + r.err.Error()
	}
	return "unauthenticated: " + r.cause
}

// Unwrap lets errors.Is match ErrUnauthenticated and also the underlying error, so a
// caller can tell a cancelled request (context.Canceled) from a bad token.
func (r *refusal) Unwrap() []error {
	if r.err != nil {
		return []error{ErrUnauthenticated, r.err}
	}
	return []error{ErrUnauthenticated}
}

// Cause returns the fixed cause of a refusal ("token expired", "entra token: wrong
// audience"), or "" when err is not one. A cause never quotes the token or its claims, so
// an HTTP layer may pass it on to the caller (an error_description of RFC 6750).
func Cause(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.cause
	}
	return ""
}
