package localazuretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/localdial"
)

// StorageFront is the stand-in's RBAC storage front on its own TLS server, whose
// certificate covers *.blob.localhost as the local stack's does.
type StorageFront struct {
	HTTPS *httptest.Server
	// EndpointTemplate is the account URL for fmt.Sprintf with the account name:
	// https://%s.blob.localhost:<port>/.
	EndpointTemplate string

	roots *x509.CertPool
}

// StartStorageFront serves si's storage front, configured by cfg (Azurite's blob endpoint
// at least), until the test ends.
func (si *StandIn) StartStorageFront(tb testing.TB, cfg localazure.StorageFrontConfig) *StorageFront {
	tb.Helper()
	h, err := si.Server.StorageFront(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	cert, roots := Certificate(tb, "*"+localdial.BlobSuffix)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	return &StorageFront{HTTPS: srv, EndpointTemplate: "https://%s" + localdial.BlobSuffix + ":" + port + "/", roots: roots}
}

// Transport sends <account>.blob.localhost of each of accounts to the front, trusting its
// certificate; any other account's host fails as a name that does not resolve.
func (f *StorageFront) Transport(tb testing.TB, accounts ...string) *http.Client {
	tb.Helper()
	d, err := localdial.New(f.HTTPS.Listener.Addr().String(), accounts)
	if err != nil {
		tb.Fatal(err)
	}
	return d.Client(&tls.Config{RootCAs: f.roots})
}

// Certificate is a self-signed server certificate for hosts (DNS names, wildcards
// included, or IP addresses), valid from an hour ago for three hours, and a pool that
// trusts it. Its key is an *ecdsa.PrivateKey.
func Certificate(tb testing.TB, hosts ...string) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localazuretest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(2 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
