package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ErrNotLoopback is wrapped by every refusal of a target that is not proven to be this
// machine: a host that is not a loopback address, a name with any non-loopback address, a
// name that does not resolve, or a URL that is not http or https.
var ErrNotLoopback = errors.New("not a loopback target")

// lookupTimeout bounds one name resolution, so a check never hangs on a slow resolver.
const lookupTimeout = 5 * time.Second

// resolver answers the addresses of a host name. Run and the dial guard take it as a
// value so tests can give names any answer without DNS.
type resolver func(ctx context.Context, host string) ([]netip.Addr, error)

func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// CheckTarget returns nil when u may be load tested: its scheme is http or https and its
// host is a loopback address (127.0.0.0/8, ::1), localhost, or a name whose every address
// is loopback. It resolves names but never connects. Refusals wrap ErrNotLoopback.
func CheckTarget(ctx context.Context, u *url.URL) error {
	return checkURL(ctx, u, systemLookup)
}

func checkURL(ctx context.Context, u *url.URL, resolve resolver) error {
	if u == nil {
		return fmt.Errorf("no URL: %w", ErrNotLoopback)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q, want http or https: %w", u.Scheme, ErrNotLoopback)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("URL without a host: %w", ErrNotLoopback)
	}
	_, err := loopbackAddrs(ctx, u.Hostname(), resolve)
	return err
}

// loopbackAddrs returns the addresses of host when all of them are loopback. An IP literal
// is its own answer; localhost is 127.0.0.1 and ::1 without a lookup (RFC 6761, section
// 6.3); any other name is resolved and refused if one address is not loopback, so a name
// cannot smuggle a remote host in among loopback answers.
func loopbackAddrs(ctx context.Context, host string, resolve resolver) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Unmap().IsLoopback() {
			return nil, fmt.Errorf("host %s: %w", host, ErrNotLoopback)
		}
		return []netip.Addr{a}, nil
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w: %w", host, ErrNotLoopback, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("host %s has no addresses: %w", host, ErrNotLoopback)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return nil, fmt.Errorf("host %s resolves to %s: %w", host, a, ErrNotLoopback)
		}
	}
	return addrs, nil
}

// dialFunc is the shape of http.Transport.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// guard is the last check before a connection exists. It resolves the host of every dial
// itself, refuses any non-loopback answer, and hands next only the checked IP literals, so
// a name that resolved to loopback when the target was checked cannot reach another host
// later (DNS rebinding), and neither can a redirect.
type guard struct {
	resolve resolver
	next    dialFunc
	refused func(error) // told of every refusal; Run stops on the first
}

func (g *guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	addrs, err := loopbackAddrs(ctx, host, g.resolve)
	if err != nil {
		g.refused(err)
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		conn, err := g.next(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// newTransport returns the transport Run uses: a clone of base (or a fresh one) whose every
// dial goes through the guard, with no proxy and an idle pool that holds a connection per
// worker, so the run measures requests and not connection set-up. A base that dials TLS
// itself is refused: the guard could not see those dials.
func newTransport(base *http.Transport, concurrency int, g *guard) (*http.Transport, error) {
	var t *http.Transport
	if base == nil {
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		t = &http.Transport{
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
		}
		g.next = d.DialContext
	} else {
		if base.DialTLSContext != nil || base.DialTLS != nil {
			return nil, errors.New("client transport sets DialTLSContext or DialTLS: those dials cannot be checked for loopback")
		}
		t = base.Clone()
		switch {
		case base.DialContext != nil:
			g.next = base.DialContext
		case base.Dial != nil:
			dial := base.Dial
			g.next = func(_ context.Context, network, addr string) (net.Conn, error) { return dial(network, addr) }
		default:
			d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
			g.next = d.DialContext
		}
	}
	t.Proxy = nil
	t.OnProxyConnectResponse = nil
	t.Dial = nil
	t.DialContext = g.dial
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, concurrency)
	if t.MaxIdleConns != 0 {
		t.MaxIdleConns = max(t.MaxIdleConns, concurrency)
	}
	if t.MaxConnsPerHost != 0 {
		t.MaxConnsPerHost = max(t.MaxConnsPerHost, concurrency)
	}
	return t, nil
}
