package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/clocktest"
)

// jwksServer is an identity provider's key endpoint on loopback that counts its fetches
// and can be switched to other keys, to failure, or to hang until released.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64

	mu      sync.Mutex
	body    []byte
	status  int
	started chan struct{} // if set, receives once per request before it waits on release
	release chan struct{}
}

func newJWKSServer(t *testing.T, minters ...*auth.Minter) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(t, minters...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status, started, release := s.body, s.status, s.started, s.release
		s.mu.Unlock()
		if started != nil {
			started <- struct{}{}
			<-release
		}
		if status != http.StatusOK {
			http.Error(w, "unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve publishes the keys of minters.
func (s *jwksServer) serve(t *testing.T, minters ...*auth.Minter) {
	t.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, m := range minters {
		var one struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(m.JWKS(), &one); err != nil {
			t.Fatalf("decode minter JWKS: %v", err)
		}
		set.Keys = append(set.Keys, one.Keys...)
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("encode JWKS: %v", err)
	}
	s.respond(http.StatusOK, body)
}

func (s *jwksServer) respond(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func newMinter(t *testing.T, clk *clocktest.Clock) *auth.Minter {
	t.Helper()
	m, err := auth.NewMinter(newTestKey(t).pkcs8PEM, testIssuer, testAudience, clk.Now)
	if err != nil {
		t.Fatalf("NewMinter: %v", err)
	}
	return m
}

func mint(t *testing.T, m *auth.Minter) string {
	t.Helper()
	tok, err := m.Mint("user-1", []string{"org-1"}, time.Hour)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

func newJWKSVerifier(t *testing.T, srv *jwksServer, clk *clocktest.Clock, interval time.Duration) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{
		Issuer: testIssuer, Audience: testAudience,
		JWKSURL: srv.URL + "/keys", HTTPClient: srv.Client(),
		JWKSRefreshInterval: interval, Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func wantFetches(t *testing.T, srv *jwksServer, want int64) {
	t.Helper()
	if got := srv.fetches.Load(); got != want {
		t.Fatalf("JWKS fetches = %d, want %d", got, want)
	}
}

func wantRefused(t *testing.T, v *auth.Verifier, tok, cause string) {
	t.Helper()
	_, err := v.Verify(context.Background(), tok)
	if !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Verify() error = %v, want ErrUnauthenticated", err)
	}
	if !strings.Contains(err.Error(), cause) {
		t.Errorf("Verify() error = %q, want cause %q", err, cause)
	}
	assertNoTokenLeak(t, err, tok)
}

func wantAccepted(t *testing.T, v *auth.Verifier, tok string) {
	t.Helper()
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if !p.CanAccess("org-1") || p.CanAccess("org-2") {
		t.Errorf("Verify() = %+v, want access to org-1 only", p)
	}
}

func TestJWKSFetchesOnceAndCaches(t *testing.T) {
	clk := newClock()
	m := newMinter(t, clk)
	srv := newJWKSServer(t, m)
	v := newJWKSVerifier(t, srv, clk, 0)

	wantFetches(t, srv, 0) // NewVerifier does no I/O
	// Tokens refused before any key is needed cost no fetch.
	wantRefused(t, v, "garbage", "malformed")
	wantRefused(t, v, unsignedToken(t, validClaims(clk.Now())), "algorithm")
	wantRefused(t, v, signRS256(t, newTestKey(t).priv, "", validClaims(clk.Now())), "no kid")
	wantFetches(t, srv, 0)

	tok := mint(t, m)
	for range 5 {
		wantAccepted(t, v, tok)
	}
	wantFetches(t, srv, 1)
}

func TestJWKSKeyRotation(t *testing.T) {
	clk := newClock()
	oldKey, newKey := newMinter(t, clk), newMinter(t, clk)
	srv := newJWKSServer(t, oldKey)
	v := newJWKSVerifier(t, srv, clk, 0)

	wantAccepted(t, v, mint(t, oldKey))
	wantFetches(t, srv, 1)

	// The identity provider publishes a new key and signs with it. Within the refresh
	// interval of the last fetch the new kid waits; once it has passed, one fetch finds it.
	srv.serve(t, oldKey, newKey)
	wantRefused(t, v, mint(t, newKey), "rate limited")
	wantFetches(t, srv, 1)

	clk.Advance(auth.DefaultJWKSRefreshInterval)
	for range 3 {
		wantAccepted(t, v, mint(t, newKey))
		wantAccepted(t, v, mint(t, oldKey))
	}
	wantFetches(t, srv, 2)

	// The old key is withdrawn: after the next refresh it no longer verifies.
	srv.serve(t, newKey)
	clk.Advance(auth.DefaultJWKSRefreshInterval)
	wantRefused(t, v, signRS256(t, newTestKey(t).priv, "unknown-kid", validClaims(clk.Now())), "no key")
	wantFetches(t, srv, 3)
	wantRefused(t, v, mint(t, oldKey), "no key")
	wantAccepted(t, v, mint(t, newKey))
	wantFetches(t, srv, 3)
}

func TestJWKSUnknownKIDFloodIsBounded(t *testing.T) {
	clk := newClock()
	m := newMinter(t, clk)
	forger := newTestKey(t)
	srv := newJWKSServer(t, m)
	interval := 10 * time.Minute
	v := newJWKSVerifier(t, srv, clk, interval)

	flood := func() {
		t.Helper()
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for i := range 200 {
			tok := signRS256(t, forger.priv, fmt.Sprintf("forged-%d", i), validClaims(clk.Now()))
			wg.Go(func() {
				_, err := v.Verify(context.Background(), tok)
				if !errors.Is(err, auth.ErrUnauthenticated) {
					accepted.Add(1)
				}
			})
		}
		wg.Wait()
		if n := accepted.Load(); n != 0 {
			t.Fatalf("%d forged tokens were not refused", n)
		}
	}

	flood()
	wantFetches(t, srv, 1)
	wantAccepted(t, v, mint(t, m)) // the one fetch serves real tokens
	wantFetches(t, srv, 1)

	clk.Advance(time.Minute) // the default interval, but this verifier's is longer
	flood()
	wantFetches(t, srv, 1)

	clk.Advance(interval)
	flood()
	wantFetches(t, srv, 2)
}

func TestJWKSServerDown(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*testing.T, *jwksServer)
	}{
		{"status 500", func(_ *testing.T, s *jwksServer) { s.respond(http.StatusInternalServerError, nil) }},
		{"status 404", func(_ *testing.T, s *jwksServer) { s.respond(http.StatusNotFound, nil) }},
		{"not JSON", func(_ *testing.T, s *jwksServer) { s.respond(http.StatusOK, []byte("<html>")) }},
		{"no usable key", func(_ *testing.T, s *jwksServer) { s.respond(http.StatusOK, []byte(`{"keys":[]}`)) }},
		{"too large", func(_ *testing.T, s *jwksServer) {
			s.respond(http.StatusOK, []byte(`{"keys":[],"pad":"`+strings.Repeat("x", 2<<20)+`"}`))
		}},
		{"connection refused", func(_ *testing.T, s *jwksServer) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			m := newMinter(t, clk)
			srv := newJWKSServer(t, m)
			tt.setup(t, srv)
			v := newJWKSVerifier(t, srv, clk, 0)
			wantRefused(t, v, mint(t, m), "jwks unavailable")
			// The failed fetch counts against the interval: no retry storm while down.
			wantRefused(t, v, mint(t, m), "rate limited")

			srv.serve(t, m)
			clk.Advance(auth.DefaultJWKSRefreshInterval)
			if tt.name != "connection refused" {
				wantAccepted(t, v, mint(t, m))
			}
		})
	}
}

func TestJWKSOutageKeepsCachedKeys(t *testing.T) {
	clk := newClock()
	m := newMinter(t, clk)
	srv := newJWKSServer(t, m)
	v := newJWKSVerifier(t, srv, clk, 0)
	wantAccepted(t, v, mint(t, m))
	wantFetches(t, srv, 1)

	// Long after the fetch the set is stale: the next verification refetches, and when
	// the host is down the cached key keeps working rather than logging everyone out.
	srv.respond(http.StatusServiceUnavailable, nil)
	clk.Advance(2 * time.Hour)
	wantAccepted(t, v, mint(t, m))
	wantFetches(t, srv, 2)
	wantAccepted(t, v, mint(t, m)) // within the interval: no new attempt
	wantFetches(t, srv, 2)
}

func TestJWKSHonoursContext(t *testing.T) {
	clk := newClock()
	m := newMinter(t, clk)
	srv := newJWKSServer(t, m)
	v := newJWKSVerifier(t, srv, clk, 0)
	tok := mint(t, m)

	// A request that is already over spends no fetch.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := v.Verify(done, tok); !errors.Is(err, auth.ErrUnauthenticated) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify(cancelled ctx) error = %v, want ErrUnauthenticated and context.Canceled", err)
	}
	wantFetches(t, srv, 0)

	// A request cancelled while the JWKS host hangs returns at once; the fetch carries on
	// and serves the next request.
	started, release := make(chan struct{}, 1), make(chan struct{})
	srv.mu.Lock()
	srv.started, srv.release = started, release
	srv.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tok)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, auth.ErrUnauthenticated) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify() error = %v, want ErrUnauthenticated and context.Canceled", err)
	}
	close(release)
	wantAccepted(t, v, tok)
	wantFetches(t, srv, 1)
}
