package stack

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CertDNSNames and CertIPs are what the local certificate is good for: the loopback
// address, localhost and the product-style hosts <account>.{blob,queue,table}.localhost,
// through which the storage SDKs sign for the right account.
var (
	CertDNSNames = []string{"localhost", "*.blob.localhost", "*.queue.localhost", "*.table.localhost"}
	CertIPs      = []net.IP{net.IPv4(127, 0, 0, 1)}
)

const (
	certLifetime = 825 * 24 * time.Hour // the most that Apple's TLS clients accept
	certMinLeft  = 30 * 24 * time.Hour  // a certificate closer to its end is made anew
)

// EnsureCert makes the local TLS certificate (self-signed, RSA 2048, serverAuth) and its
// PKCS #8 key unless the files are there, belong together, cover CertDNSNames and CertIPs,
// and are good for 30 more days. It reports whether it wrote them.
func EnsureCert(certFile, keyFile string, now time.Time) (bool, error) {
	if certUsable(certFile, keyFile, now) {
		return false, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return false, err
	}
	ski := sha1.Sum(x509.MarshalPKCS1PublicKey(&key.PublicKey)) // RFC 5280's method 1
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"azcreds local stack"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		DNSNames:              CertDNSNames,
		IPAddresses:           CertIPs,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return false, fmt.Errorf("create the TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, err
	}
	// The key first: a certificate without its key is found unusable next time.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return false, err
	}
	if err := writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

func certUsable(certFile, keyFile string, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile) // fails when they do not belong together
	if err != nil || len(pair.Certificate) == 0 {
		return false
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || now.Add(certMinLeft).After(c.NotAfter) || now.Before(c.NotBefore) {
		return false
	}
	for _, name := range CertDNSNames {
		if !slices.Contains(c.DNSNames, name) {
			return false
		}
	}
	for _, ip := range CertIPs {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// EnsureAuthKeys makes the RSA key pair of local API tokens: the PKCS #8 private key when
// it is missing or unreadable, and the public key (PKIX) whenever it does not match.
func EnsureAuthKeys(keyFile, pubFile string) (bool, error) {
	changed := false
	key, err := readRSAKey(keyFile)
	if err != nil {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return false, err
		}
		if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return false, err
		}
		changed = true
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return false, err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if old, err := os.ReadFile(pubFile); err == nil && bytes.Equal(old, pub) {
		return changed, nil
	}
	return true, writeFile(pubFile, pub, 0o644)
}

func readRSAKey(file string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PKCS #8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rk, nil
}

// writeFile replaces file at once (a temporary file renamed over it), creating its
// directory.
func writeFile(file string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".new-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
