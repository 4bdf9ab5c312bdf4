package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/auth"
)

func wantCaller(t *testing.T, a *auth.Authenticator, tok string, kind auth.CallerKind) auth.Caller {
	t.Helper()
	c, err := a.Authenticate(context.Background(), tok)
	if err != nil || c.Kind != kind {
		t.Fatalf("Authenticate() = %+v, %v; want a %s", c, err, kind)
	}
	return c
}

func wantAuthRefused(t *testing.T, a *auth.Authenticator, tok, cause string) {
	t.Helper()
	c, err := a.Authenticate(context.Background(), tok)
	if !errors.Is(err, auth.ErrUnauthenticated) || c.Kind != "" {
		t.Fatalf("Authenticate() = %+v, %v; want a refusal", c, err)
	}
	if !strings.Contains(auth.Cause(err), cause) {
		t.Errorf("cause %q, want %q", auth.Cause(err), cause)
	}
}

func wantCached(t *testing.T, a *auth.Authenticator, want int) {
	t.Helper()
	if got := auth.CachedTokens(a); got != want {
		t.Fatalf("%d tokens cached, want %d", got, want)
	}
}

// TestTokenCacheRemembersVerifiedTokens: a token that verified is remembered, once, with
// who it speaks for; a refused one never is; a cache of size 0 remembers nothing.
func TestTokenCacheRemembersVerifiedTokens(t *testing.T) {
	f := newAuthenticatorFixture(t)
	a := auth.NewAuthenticator(f.platform, f.entra)
	user, wl := f.platformToken(t), f.entraToken(t, nil)
	for range 3 {
		if c := wantCaller(t, a, user, auth.CallerUser); c.User.Subject != "user-1" || !c.User.CanAccess("org-1") {
			t.Fatalf("platform token: %+v", c)
		}
		if c := wantCaller(t, a, wl, auth.CallerWorkload); c.Workload != wantMI {
			t.Fatalf("Entra token: %+v", c)
		}
	}
	wantCached(t, a, 2)

	for _, bad := range []string{"garbage", f.entraToken(t, func(c jwt.MapClaims) { c["aud"] = "https://storage.azure.com" }),
		signRS256(t, newTestKey(t).priv, "", validClaims(f.clk.Now()))} {
		for range 2 {
			wantAuthRefused(t, a, bad, "")
		}
	}
	wantCached(t, a, 2)

	off := auth.NewAuthenticator(f.platform, f.entra, auth.WithTokenCache(0))
	wantCaller(t, off, user, auth.CallerUser)
	wantCaller(t, off, wl, auth.CallerWorkload)
	wantCached(t, off, 0)
}

// TestTokenCacheWrongOrg: the cache remembers who a token speaks for, never what it may
// do: a cached token is still good only for the organizations it names.
func TestTokenCacheWrongOrg(t *testing.T) {
	f := newAuthenticatorFixture(t)
	a := auth.NewAuthenticator(f.platform, f.entra)
	tok := f.platformToken(t) // orgs: org-1
	for range 3 {
		c := wantCaller(t, a, tok, auth.CallerUser)
		if !c.User.CanAccess("org-1") || c.User.CanAccess("org-2") || c.User.CanAccess("") {
			t.Fatalf("cached caller: %+v", c.User)
		}
	}
	wantCached(t, a, 1)
}

// TestTokenCacheExpiry: a token cached while valid is not used past its exp: the token is
// verified again, which accepts it within the leeway (as without the cache) and refuses it
// after, whichever verifier it belongs to.
func TestTokenCacheExpiry(t *testing.T) {
	f := newAuthenticatorFixture(t)
	a := auth.NewAuthenticator(f.platform, f.entra)
	user, err := f.minter.Mint("user-1", []string{"org-1"}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	exp := f.clk.Now().Add(2 * time.Minute)
	wl := f.entraToken(t, func(c jwt.MapClaims) { c["exp"] = exp.Unix() })
	for range 2 { // the first Entra token's verification fetches the keys: kept from the second
		wantCaller(t, a, user, auth.CallerUser)
		wantCaller(t, a, wl, auth.CallerWorkload)
	}
	wantCached(t, a, 2)

	f.clk.Advance(2*time.Minute - time.Second) // a second before exp: from the cache
	wantCaller(t, a, user, auth.CallerUser)
	wantCaller(t, a, wl, auth.CallerWorkload)
	wantCached(t, a, 2)

	f.clk.Advance(time.Second) // at exp: verified again, accepted within the leeway, not kept
	wantCaller(t, a, user, auth.CallerUser)
	wantCaller(t, a, wl, auth.CallerWorkload)
	wantCached(t, a, 0)

	f.clk.Advance(auth.DefaultLeeway)
	wantAuthRefused(t, a, user, "token expired")
	wantAuthRefused(t, a, wl, "entra token: token expired")
	wantCached(t, a, 0)
}

// TestTokenCacheNotBefore: a token is cached only for the times it verifies at; with the
// clock set back before its nbf (less the leeway) it is verified again and refused.
func TestTokenCacheNotBefore(t *testing.T) {
	f := newAuthenticatorFixture(t)
	a := auth.NewAuthenticator(f.platform, f.entra)
	nbf := f.clk.Now()
	wl := f.entraToken(t, func(c jwt.MapClaims) { c["nbf"], c["iat"] = nbf.Unix(), nbf.Unix() })
	wantCaller(t, a, wl, auth.CallerWorkload)
	wantCaller(t, a, wl, auth.CallerWorkload)
	wantCached(t, a, 1)
	f.clk.Set(nbf.Add(-auth.DefaultLeeway - time.Second))
	wantAuthRefused(t, a, wl, "entra token: token")
}

// TestTokenCachePlatformKeyRotation: a platform token cached under a JWKS key stops
// working as soon as the verifier learns that the key was withdrawn, as it would without
// the cache: when a token with a new kid makes it refetch the set, or when the set is an
// hour old.
func TestTokenCachePlatformKeyRotation(t *testing.T) {
	for _, how := range []string{"a new kid", "the hourly refetch"} {
		t.Run(how, func(t *testing.T) {
			clk := newClock()
			oldKey, newKey := newMinter(t, clk), newMinter(t, clk)
			srv := newJWKSServer(t, oldKey)
			v := newJWKSVerifier(t, srv, clk, 0)
			a := auth.NewAuthenticator(v, nil)

			old := mint(t, oldKey)
			for range 3 {
				wantCaller(t, a, old, auth.CallerUser)
			}
			wantCached(t, a, 1) // the first verification fetched the set: kept from the second
			wantFetches(t, srv, 1)

			srv.serve(t, newKey) // the old key is withdrawn
			clk.Advance(auth.DefaultJWKSRefreshInterval)
			wantCaller(t, a, old, auth.CallerUser) // nothing has told the verifier yet
			if how == "a new kid" {
				wantCaller(t, a, mint(t, newKey), auth.CallerUser)
			} else {
				clk.Advance(time.Hour)
			}
			wantAuthRefused(t, a, old, "no key")
			wantFetches(t, srv, 2)
			wantCaller(t, a, mint(t, newKey), auth.CallerUser)
		})
	}
}

// TestTokenCacheEntraKeyRotation: the same for workload identities' Entra tokens, whose
// lifetime (24 hours for a managed identity) is far longer than the key set's hour.
func TestTokenCacheEntraKeyRotation(t *testing.T) {
	for _, how := range []string{"a new kid", "the hourly refetch"} {
		t.Run(how, func(t *testing.T) {
			f := newAuthenticatorFixture(t)
			a := auth.NewAuthenticator(f.platform, f.entra)
			old := f.entraToken(t, nil)
			wantCaller(t, a, old, auth.CallerWorkload)
			wantCaller(t, a, old, auth.CallerWorkload)
			wantCached(t, a, 1)

			next := newEntraKey(t, f.clk)
			f.keys.serve(t, next.pub) // Entra withdraws the old key
			f.clk.Advance(auth.DefaultJWKSRefreshInterval)
			wantCaller(t, a, old, auth.CallerWorkload)
			if how == "a new kid" {
				wantCaller(t, a, next.sign(t, entraToken(publicLogin, customerTenant, f.clk.Now())), auth.CallerWorkload)
			} else {
				f.clk.Advance(time.Hour)
			}
			wantAuthRefused(t, a, old, "entra token: no key")
		})
	}
}

// TestTokenCacheRefetchOfTheSameKeys: the hourly refetch that finds the same keys keeps
// the cached tokens good (they were checked with those keys).
func TestTokenCacheRefetchOfTheSameKeys(t *testing.T) {
	clk := newClock()
	key := newMinter(t, clk)
	srv := newJWKSServer(t, key)
	a := auth.NewAuthenticator(newJWKSVerifier(t, srv, clk, 0), nil)
	tok, err := key.Mint("user-1", []string{"org-1"}, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantCaller(t, a, tok, auth.CallerUser)
	wantCaller(t, a, tok, auth.CallerUser)
	wantCached(t, a, 1)
	clk.Advance(time.Hour)
	other, err := key.Mint("user-2", []string{"org-1"}, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantCaller(t, a, other, auth.CallerUser) // refetches the set: the same keys
	wantFetches(t, srv, 2)
	wantCached(t, a, 2)
}

// TestTokenCacheIsBounded: however many tokens arrive, the cache holds at most its size.
func TestTokenCacheIsBounded(t *testing.T) {
	f := newAuthenticatorFixture(t)
	const size = 64
	a := auth.NewAuthenticator(f.platform, f.entra, auth.WithTokenCache(size))
	for i := range 500 {
		tok, err := f.minter.Mint(fmt.Sprintf("user-%d", i), []string{"org-1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		wantCaller(t, a, tok, auth.CallerUser)
		if n := auth.CachedTokens(a); n > size {
			t.Fatalf("%d tokens cached after %d, want at most %d", n, i+1, size)
		}
	}
	if n := auth.CachedTokens(a); n < size/2 {
		t.Errorf("%d tokens cached, want the cache about full", n)
	}
}
