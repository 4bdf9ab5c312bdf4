// Package localdial lets the real Azure SDK clients reach the local stack's storage front
// through product-style host names.
//
// In Azure every storage account has its own host, <account>.blob.core.windows.net, and a
// storage account that does not exist is a name that does not resolve. Locally the accounts
// are named <account>.blob.localhost and all of them are served by one process (the RBAC
// front of cmd/localazure). A Dialer connects the names of the configured accounts to that
// front and answers every other account name the way the resolver answers for a missing
// account: a *net.DNSError with IsNotFound set. The host name stays in the URL, so TLS still
// verifies it (the local certificate covers *.blob.localhost) and the SDK derives the account
// name from the host, as it does in Azure.
//
// The package holds no server code, so the handler binary can use it without linking the
// stand-in.
package localdial

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// BlobSuffix is the host suffix of local blob endpoints: <account>.blob.localhost.
const BlobSuffix = ".blob.localhost"

// Dialer connects <account>.blob.localhost to one address for the accounts it knows and
// fails every other account's name as a DNS lookup would. Other hosts are dialled normally.
type Dialer struct {
	addr     string
	accounts map[string]bool
	dialer   net.Dialer
}

// New returns a Dialer that sends the blob hosts of accounts to addr (host:port).
func New(addr string, accounts []string) (*Dialer, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("local blob address %q: %w", addr, err)
	}
	d := &Dialer{addr: addr, accounts: map[string]bool{}, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
	for _, a := range accounts {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			d.accounts[a] = true
		}
	}
	if len(d.accounts) == 0 {
		return nil, errors.New("no local storage accounts: every account would fail to resolve")
	}
	return d, nil
}

// ParseAccounts splits a comma-separated list of account names.
func ParseAccounts(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// DialContext has net.Dialer's signature, for http.Transport.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	account, ok := strings.CutSuffix(host, BlobSuffix)
	if !ok || account == "" || strings.Contains(account, ".") {
		return d.dialer.DialContext(ctx, network, address)
	}
	if !d.accounts[account] {
		// What the resolver reports for <missing>.blob.core.windows.net.
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return d.dialer.DialContext(ctx, network, d.addr)
}

// Transport returns an http.Transport that dials through d. tlsConfig, when not nil, is
// the client TLS configuration (tests trust their own certificate with it); otherwise the
// system roots verify the server, SSL_CERT_FILE included.
func (d *Dialer) Transport(tlsConfig *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	// A proxy from the environment would receive *.blob.localhost, which only this dialer
	// knows how to reach.
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		if strings.HasSuffix(strings.ToLower(r.URL.Hostname()), BlobSuffix) {
			return nil, nil
		}
		return http.ProxyFromEnvironment(r)
	}
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig.Clone()
	}
	return t
}

// Client returns an http.Client over Transport(tlsConfig). It satisfies the Azure SDK's
// policy.Transporter.
func (d *Dialer) Client(tlsConfig *tls.Config) *http.Client {
	return &http.Client{Transport: d.Transport(tlsConfig)}
}
