package auth

import (
	"testing"
)

// rfc7638N is the modulus of the RSA key in RFC 7638 section 3.1.
const rfc7638N = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	k, err := jwk{Kty: "RSA", N: rfc7638N, E: "AQAB"}.publicKey()
	if err != nil {
		t.Fatalf("publicKey: %v", err)
	}
	if got, want := keyID(k), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("keyID() = %q, want %q (RFC 7638 section 3.1)", got, want)
	}
	if j := encodeJWK(k); j.N != rfc7638N || j.E != "AQAB" {
		t.Errorf("encodeJWK() = %+v, want the RFC's n and e", j)
	}
}

func TestParseJWKS(t *testing.T) {
	good := `{"kty":"RSA","kid":"good","use":"sig","alg":"RS256","n":"` + rfc7638N + `","e":"AQAB"}`
	tests := []struct {
		name     string
		doc      string
		wantKIDs []string // nil: the document is refused
	}{
		{"one key", `{"keys":[` + good + `]}`, []string{"good"}},
		{"padded n and e", `{"keys":[{"kty":"RSA","kid":"p","n":"` + rfc7638N + `=","e":"AQAB"}]}`, []string{"p"}},
		{"odd keys skipped", `{"keys":[` +
			`{"kty":"EC","kid":"ec","crv":"P-256","x":"AA","y":"AA"},` +
			`{"kty":"RSA","kid":"enc","use":"enc","n":"` + rfc7638N + `","e":"AQAB"},` +
			`{"kty":"RSA","kid":"ps","alg":"PS256","n":"` + rfc7638N + `","e":"AQAB"},` +
			`{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB"},` +
			`{"kty":"RSA","kid":"bad-n","n":"!!","e":"AQAB"},` +
			`{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},` +
			`{"kty":"RSA","kid":"even-e","n":"` + rfc7638N + `","e":"AQAA"},` +
			`{"kty":"RSA","kid":"long-e","n":"` + rfc7638N + `","e":"AQABAQAB"},` +
			good + `]}`, []string{"good"}},
		{"no usable key", `{"keys":[{"kty":"EC","kid":"ec"}]}`, nil},
		{"empty set", `{"keys":[]}`, nil},
		{"not JSON", `<html>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tt.doc))
			if tt.wantKIDs == nil {
				if err == nil {
					t.Fatalf("parseJWKS() = %v, want an error", keys)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWKS() error = %v", err)
			}
			if len(keys) != len(tt.wantKIDs) {
				t.Errorf("parseJWKS() has %d keys, want %v", len(keys), tt.wantKIDs)
			}
			for _, kid := range tt.wantKIDs {
				if keys[kid] == nil {
					t.Errorf("parseJWKS() lacks kid %q", kid)
				}
			}
		})
	}
}
