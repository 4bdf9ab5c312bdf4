package auth

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Key size bounds. Below 2048 bits RSA is too weak to trust; above 8192 bits a hostile JWKS
// could make every verification expensive.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// parsePrivateKeyPEM reads an RSA private key in PKCS #8 ("PRIVATE KEY") or PKCS #1
// ("RSA PRIVATE KEY") form. Errors never quote the key.
func parsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("private key: no PEM block")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private key: invalid PKCS #8 data")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key: %T is not RSA", k)
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private key: invalid PKCS #1 data")
		}
		key = k
	default:
		return nil, fmt.Errorf("private key: unsupported PEM type %q", block.Type)
	}
	if err := checkRSAPublicKey(&key.PublicKey); err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	return key, nil
}

// parsePublicKeyPEM reads an RSA public key in PKIX ("PUBLIC KEY") form.
func parsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("public key: no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("public key: unsupported PEM type %q, want PUBLIC KEY (PKIX)", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key: %T is not RSA", k)
	}
	if err := checkRSAPublicKey(rk); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return rk, nil
}

func checkRSAPublicKey(k *rsa.PublicKey) error {
	if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return fmt.Errorf("RSA key of %d bits, want %d to %d", bits, minRSABits, maxRSABits)
	}
	if k.E < 3 || k.E%2 == 0 {
		return errors.New("RSA public exponent must be odd and at least 3")
	}
	return nil
}

// PublicKeyPEM returns the PKIX PEM ("PUBLIC KEY") of an RSA private key given in PKCS #8
// or PKCS #1 PEM, the form [Config.PublicKeyPEM] expects.
func PublicKeyPEM(privateKeyPEM []byte) ([]byte, error) {
	key, err := parsePrivateKeyPEM(privateKeyPEM)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// jwk is one RSA key of a JSON Web Key Set (RFC 7517, RFC 7518 section 6.3).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// jwkSet is a JSON Web Key Set document.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

var b64 = base64.RawURLEncoding

func encodeJWK(k *rsa.PublicKey) jwk {
	return jwk{
		Kty: "RSA",
		N:   b64.EncodeToString(k.N.Bytes()),
		E:   b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

// keyID is the RFC 7638 JWK thumbprint of k: stable for a key, different across keys, and
// computable by anyone holding the public key.
func keyID(k *rsa.PublicKey) string {
	j := encodeJWK(k)
	// RFC 7638: the required members in lexicographic order, no whitespace.
	canonical := `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// publicKey decodes an RSA JWK. n and e are unsigned big-endian integers in base64url
// without padding (RFC 7518 section 6.3.1); trailing padding is tolerated.
func (j jwk) publicKey() (*rsa.PublicKey, error) {
	n, err := b64.DecodeString(strings.TrimRight(j.N, "="))
	if err != nil || len(n) == 0 {
		return nil, errors.New("bad modulus")
	}
	e, err := b64.DecodeString(strings.TrimRight(j.E, "="))
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("bad exponent")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if err := checkRSAPublicKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// parseJWKS returns the usable signing keys of a JWKS document by kid. Keys that are not
// RSA, not for signatures, for another algorithm, without kid or malformed are skipped so
// that one odd key cannot take the others down; a set with no usable key is an error.
func parseJWKS(data []byte) (map[string]*rsa.PublicKey, error) {
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, len(set.Keys))
	for _, j := range set.Keys {
		if j.Kty != "RSA" || j.Kid == "" || (j.Use != "" && j.Use != "sig") || (j.Alg != "" && j.Alg != "RS256") {
			continue
		}
		if _, dup := keys[j.Kid]; dup {
			continue
		}
		k, err := j.publicKey()
		if err != nil {
			continue
		}
		keys[j.Kid] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks has no usable RS256 key")
	}
	return keys, nil
}
