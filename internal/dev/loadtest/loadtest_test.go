package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDNS answers names from a table and fails every other name, so no test touches DNS.
func fakeDNS(answers map[string][]string) resolver {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := answers[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var addrs []netip.Addr
		for _, ip := range ips {
			addrs = append(addrs, netip.MustParseAddr(ip))
		}
		return addrs, nil
	}
}

var testDNS = fakeDNS(map[string][]string{
	"example.com":   {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
	"loop.test":     {"127.0.0.1", "::1"},
	"loop2.test":    {"127.8.9.10"},
	"mixed.test":    {"127.0.0.1", "10.0.0.1"},
	"mapped.test":   {"::ffff:192.168.1.1"},
	"noaddrs.test":  {},
	"private.test":  {"192.168.1.1"},
	"rfc1918.test":  {"10.1.2.3"},
	"linklocal.tst": {"fe80::1"},
})

// counter is a test server that counts the requests its handler saw.
type counter struct {
	*httptest.Server
	n atomic.Int64
}

func newCounter(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) *counter {
	t.Helper()
	c := &counter{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.n.Add(1)
		if h != nil {
			h(n, w, r)
		}
	}))
	t.Cleanup(c.Close)
	return c
}

// dialRecorder is a client transport that records every address it is asked to dial.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) client() *http.Client {
	var nd net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.mu.Lock()
		d.addrs = append(d.addrs, addr)
		d.mu.Unlock()
		return nd.DialContext(ctx, network, addr)
	}}}
}

func (d *dialRecorder) nonLoopback() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, a := range d.addrs {
		host, _, _ := net.SplitHostPort(a)
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// checkSums holds for every result: each request is a response or a transport error, and
// Errors is the non-2xx responses plus the transport errors.
func checkSums(t *testing.T, res Result) {
	t.Helper()
	responses, non2xx := 0, 0
	for code, n := range res.StatusCounts {
		responses += n
		if code < 200 || code > 299 {
			non2xx += n
		}
	}
	if responses+res.TransportErrors != res.Requests {
		t.Errorf("responses %d + transport errors %d != requests %d", responses, res.TransportErrors, res.Requests)
	}
	if res.Errors != non2xx+res.TransportErrors {
		t.Errorf("errors %d, want non-2xx %d + transport %d", res.Errors, non2xx, res.TransportErrors)
	}
}

func TestCheckTarget(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/", true},
		{"http://127.255.0.9/", true},
		{"https://[::1]:7443/x", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"http://localhost:7071/v1", true},
		{"http://LocalHost./", true},
		{"http://loop.test/", true},
		{"http://loop2.test:1/", true},

		{"http://10.0.0.1/", false},
		{"http://192.168.1.1:8080/", false},
		{"http://0.0.0.0/", false},
		{"http://[::]/", false},
		{"http://[2001:db8::1]/", false},
		{"http://[::ffff:10.0.0.1]/", false},
		{"http://[fe80::1%25lo]/", false},
		{"http://example.com/", false},
		{"http://mixed.test/", false},
		{"http://mapped.test/", false},
		{"http://noaddrs.test/", false},
		{"http://nxdomain.test/", false},
		{"http://localhost.example.com/", false},
		{"http://127.0.0.1.example.com/", false},
		{"ftp://127.0.0.1/", false},
		{"unix:///var/run/x.sock", false},
		{"http:///path", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			err = checkURL(t.Context(), u, testDNS)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("err = %v, want ErrNotLoopback", err)
			}
		})
	}

	// The exported check needs no DNS for literals and localhost.
	for _, raw := range []string{"http://127.0.0.1/", "http://localhost/"} {
		u, _ := url.Parse(raw)
		if err := CheckTarget(t.Context(), u); err != nil {
			t.Errorf("CheckTarget(%s) = %v", raw, err)
		}
	}
	u, _ := url.Parse("http://10.0.0.1/")
	if err := CheckTarget(t.Context(), u); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("CheckTarget(10.0.0.1) = %v, want ErrNotLoopback", err)
	}
}

func TestRunRefusesNonLoopbackWithoutConnecting(t *testing.T) {
	srv := newCounter(t, nil)
	for _, target := range []string{
		"http://10.0.0.1/", "http://192.168.1.1:8080/", "http://example.com/", "http://[2001:db8::1]/",
		"http://mixed.test/", "http://nxdomain.test/", "https://private.test/",
	} {
		t.Run(target, func(t *testing.T) {
			var rec dialRecorder
			start := time.Now()
			_, err := Run(t.Context(), Config{URL: target, Client: rec.client(), Duration: time.Second, resolve: testDNS})
			if !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("err = %v, want ErrNotLoopback", err)
			}
			if len(rec.addrs) != 0 {
				t.Errorf("dialled %v", rec.addrs)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("refusal took %s", d)
			}
		})
	}

	t.Run("default client", func(t *testing.T) {
		_, err := Run(t.Context(), Config{URL: "http://10.0.0.1/", Duration: time.Second})
		if !errors.Is(err, ErrNotLoopback) {
			t.Fatalf("err = %v, want ErrNotLoopback", err)
		}
	})

	// A builder that turns to another host mid-run stops the run before that request is sent.
	t.Run("Requests turns remote", func(t *testing.T) {
		var rec dialRecorder
		_, err := Run(t.Context(), Config{
			Requests: func(i int) (*http.Request, error) {
				if i >= 5 {
					return http.NewRequest(http.MethodGet, "http://rfc1918.test/", nil)
				}
				return http.NewRequest(http.MethodGet, srv.URL, nil)
			},
			Client: rec.client(), MaxRequests: 100, Duration: 2 * time.Second, resolve: testDNS,
		})
		if !errors.Is(err, ErrNotLoopback) {
			t.Fatalf("err = %v, want ErrNotLoopback", err)
		}
		if bad := rec.nonLoopback(); len(bad) != 0 {
			t.Errorf("dialled %v", bad)
		}
		if n := srv.n.Load(); n != 5 {
			t.Errorf("server saw %d requests, want the 5 loopback ones", n)
		}
	})
}

// TestRunChecksEveryDial covers what the URL check cannot see: a name whose answer changes
// after the check (DNS rebinding) and a redirect to another host.
func TestRunChecksEveryDial(t *testing.T) {
	t.Run("rebinding", func(t *testing.T) {
		srv := newCounter(t, nil)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		var lookups atomic.Int64
		resolve := func(context.Context, string) ([]netip.Addr, error) {
			if lookups.Add(1) == 1 {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		}
		var rec dialRecorder
		_, err := Run(t.Context(), Config{URL: "http://rebind.test:" + port + "/", Client: rec.client(),
			Duration: time.Second, resolve: resolve})
		if !errors.Is(err, ErrNotLoopback) {
			t.Fatalf("err = %v, want ErrNotLoopback", err)
		}
		if len(rec.addrs) != 0 || srv.n.Load() != 0 {
			t.Errorf("dialled %v, server saw %d", rec.addrs, srv.n.Load())
		}
	})

	t.Run("redirect", func(t *testing.T) {
		srv := newCounter(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://10.0.0.1/elsewhere", http.StatusFound)
		})
		var rec dialRecorder
		client := rec.client() // follows redirects, as http.Client does by default
		_, err := Run(t.Context(), Config{URL: srv.URL, Client: client, MaxRequests: 3, resolve: testDNS})
		if !errors.Is(err, ErrNotLoopback) {
			t.Fatalf("err = %v, want ErrNotLoopback", err)
		}
		if bad := rec.nonLoopback(); len(bad) != 0 {
			t.Errorf("dialled %v", bad)
		}
	})

	t.Run("redirect not followed by default", func(t *testing.T) {
		srv := newCounter(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://10.0.0.1/elsewhere", http.StatusFound)
		})
		res, err := Run(t.Context(), Config{URL: srv.URL, MaxRequests: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCounts[http.StatusFound] != 3 || res.Errors != 3 {
			t.Errorf("got %v, want three 302s counted as errors", res)
		}
	})
}

func TestRunMaxRequestsIsExact(t *testing.T) {
	for _, c := range []int{1, 7, 32} {
		t.Run(fmt.Sprint("c=", c), func(t *testing.T) {
			srv := newCounter(t, nil)
			start := time.Now()
			res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: c, MaxRequests: 500, Duration: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			checkSums(t, res)
			if res.Requests != 500 || srv.n.Load() != 500 || res.StatusCounts[200] != 500 {
				t.Errorf("requests %d, server saw %d, 200s %d; want 500 each", res.Requests, srv.n.Load(), res.StatusCounts[200])
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s: MaxRequests did not stop the run", time.Since(start))
			}
			if res.Concurrency != c || res.RPS <= 0 || res.Errors != 0 {
				t.Errorf("result %v", res)
			}
		})
	}
}

func TestRunDurationBound(t *testing.T) {
	srv := newCounter(t, func(int64, http.ResponseWriter, *http.Request) { time.Sleep(time.Millisecond) })
	const d = 300 * time.Millisecond
	start := time.Now()
	res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: 4, Duration: d})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	if int64(res.Requests) != srv.n.Load() || res.Requests == 0 {
		t.Errorf("requests %d, server saw %d", res.Requests, srv.n.Load())
	}
	if res.Elapsed < d || took > d+time.Second {
		t.Errorf("elapsed %s, took %s; want about %s", res.Elapsed, took, d)
	}
	if want := float64(res.Requests) / res.Elapsed.Seconds(); res.RPS != want {
		t.Errorf("rps %f, want %f", res.RPS, want)
	}
}

// TestRunConcurrency has the server hold every request until c are in flight (or a
// second passes), so the observed maximum is exactly c when the workers are concurrent,
// and it can never be more.
func TestRunConcurrency(t *testing.T) {
	for _, c := range []int{1, 4, 16, 64} {
		t.Run(fmt.Sprint("c=", c), func(t *testing.T) {
			var inflight, peak atomic.Int64
			reached := make(chan struct{})
			var once sync.Once
			srv := newCounter(t, func(int64, http.ResponseWriter, *http.Request) {
				now := inflight.Add(1)
				defer inflight.Add(-1)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
				if now >= int64(c) {
					once.Do(func() { close(reached) })
				}
				select {
				case <-reached:
				case <-time.After(time.Second):
				}
			})
			res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: c, MaxRequests: 10 * c})
			if err != nil {
				t.Fatal(err)
			}
			checkSums(t, res)
			if got := peak.Load(); got != int64(c) {
				t.Errorf("server saw at most %d requests in flight, want %d", got, c)
			}
			if res.Requests != 10*c {
				t.Errorf("requests %d, want %d", res.Requests, 10*c)
			}
		})
	}
}

// TestRunReusesConnections: the idle pool holds a connection per worker, so the run does
// not keep dialling (net/http keeps only 2 idle connections per host by default).
func TestRunReusesConnections(t *testing.T) {
	const c = 16
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: c, MaxRequests: 50 * c, Warmup: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	// Exactly c in a quiet run; room for dials that lose a race to an idle connection at
	// start-up, which a busy machine makes more of (28 for 16 seen at a load average of
	// 15 on 2 cores). Without the pool sizing it is hundreds.
	if n := conns.Load(); n < c || n > 2*c {
		t.Errorf("server accepted %d connections for %d workers", n, c)
	}

	tr, err := newTransport(nil, c, &guard{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.MaxIdleConnsPerHost != c || tr.Proxy != nil {
		t.Errorf("MaxIdleConnsPerHost %d, proxy set %t", tr.MaxIdleConnsPerHost, tr.Proxy != nil)
	}
}

func TestRunPercentiles(t *testing.T) {
	const slow = 20 * time.Millisecond
	srv := newCounter(t, func(n int64, _ http.ResponseWriter, _ *http.Request) {
		if n%2 == 0 {
			time.Sleep(slow)
		}
	})
	res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: 4, MaxRequests: 100})
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	// 50 fast and 50 slow: the 50th value (p50) is the slowest fast one, the 90th and
	// 99th are slow.
	if res.P50 >= slow {
		t.Errorf("p50 %s, want below %s", res.P50, slow)
	}
	if res.P90 < slow || res.P99 < slow || res.Max < res.P99 || res.P99 < res.P90 || res.P90 < res.P50 {
		t.Errorf("p50 %s p90 %s p99 %s max %s, want p90 and p99 >= %s, ordered", res.P50, res.P90, res.P99, res.Max, slow)
	}
}

func TestPercentile(t *testing.T) {
	seq := func(n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i + 1)
		}
		return s
	}
	tests := []struct {
		n, p int
		want time.Duration
	}{
		{0, 50, 0},
		{1, 50, 1}, {1, 99, 1}, {1, 100, 1},
		{2, 50, 1}, {2, 90, 2},
		{10, 50, 5}, {10, 90, 9}, {10, 99, 10},
		{100, 50, 50}, {100, 90, 90}, {100, 99, 99}, {100, 100, 100},
		{1000, 99, 990}, {1001, 99, 991},
		{2_000_000, 50, 1_000_000}, {2_000_000, 99, 1_980_000},
	}
	for _, tt := range tests {
		if got := percentile(seq(tt.n), tt.p); got != tt.want {
			t.Errorf("percentile(1..%d, %d) = %d, want %d", tt.n, tt.p, got, tt.want)
		}
	}
}

func TestRunCountsNon2xxAsErrors(t *testing.T) {
	codes := []int{200, 201, 204, 302, 404, 500}
	var mu sync.Mutex
	sent := map[int]int{}
	srv := newCounter(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		code := codes[int(n)%len(codes)]
		mu.Lock()
		sent[code]++
		mu.Unlock()
		w.WriteHeader(code)
	})
	res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: 3, MaxRequests: 60})
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	mu.Lock()
	defer mu.Unlock()
	for _, code := range codes {
		if res.StatusCounts[code] != sent[code] || sent[code] != 10 {
			t.Errorf("status %d: counted %d, server sent %d", code, res.StatusCounts[code], sent[code])
		}
	}
	if res.Errors != 30 || res.TransportErrors != 0 {
		t.Errorf("errors %d (transport %d), want 30 non-2xx", res.Errors, res.TransportErrors)
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	target := srv.URL + "/?token=secret-value"
	srv.Close() // nothing listens on the port any more: every dial is refused

	res, err := Run(t.Context(), Config{URL: target, Concurrency: 2, MaxRequests: 20})
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	if res.Requests != 20 || res.TransportErrors != 20 || res.Errors != 20 || len(res.StatusCounts) != 0 {
		t.Errorf("got %v %v, want 20 transport errors", res, res.StatusCounts)
	}
	if res.P50 != 0 || res.Max != 0 {
		t.Errorf("transport errors have no latency, got p50 %s max %s", res.P50, res.Max)
	}
	if res.ErrorSample == "" || strings.Contains(res.ErrorSample, "secret") {
		t.Errorf("error sample %q, want the error without the URL", res.ErrorSample)
	}
}

func TestRunTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newCounter(t, func(int64, http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	start := time.Now()
	res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: 2, MaxRequests: 4, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	if res.TransportErrors != 4 || time.Since(start) > 2*time.Second {
		t.Errorf("got %v after %s, want 4 timeouts in about 200ms", res, time.Since(start))
	}
}

func TestRunWarmup(t *testing.T) {
	t.Run("bounded by time", func(t *testing.T) {
		srv := newCounter(t, func(int64, http.ResponseWriter, *http.Request) { time.Sleep(time.Millisecond) })
		res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: 2, Warmup: 150 * time.Millisecond, Duration: 150 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		checkSums(t, res)
		if res.WarmupRequests == 0 || int64(res.WarmupRequests+res.Requests) != srv.n.Load() {
			t.Errorf("warm-up %d + measured %d, server saw %d", res.WarmupRequests, res.Requests, srv.n.Load())
		}
		if res.Elapsed > 150*time.Millisecond+500*time.Millisecond {
			t.Errorf("elapsed %s includes the warm-up", res.Elapsed)
		}
	})
	t.Run("bounded by count", func(t *testing.T) {
		srv := newCounter(t, nil)
		start := time.Now()
		res, err := Run(t.Context(), Config{URL: srv.URL, Concurrency: 2, Warmup: 10 * time.Second, MaxRequests: 50})
		if err != nil {
			t.Fatal(err)
		}
		if res.WarmupRequests != 50 || res.Requests != 50 || srv.n.Load() != 100 {
			t.Errorf("warm-up %d, measured %d, server %d; want 50, 50, 100", res.WarmupRequests, res.Requests, srv.n.Load())
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("took %s", time.Since(start))
		}
	})
}

func TestRunStopsWhenCancelled(t *testing.T) {
	srv := newCounter(t, func(int64, http.ResponseWriter, *http.Request) { time.Sleep(time.Millisecond) })
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{URL: srv.URL, Concurrency: 4, Duration: 20 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s after cancel", took)
	}
	checkSums(t, res)
	if res.Requests == 0 || res.TransportErrors != 0 {
		t.Errorf("partial result %v: want requests and no cancellations counted as errors", res)
	}
}

func TestRunSendsTheRequest(t *testing.T) {
	t.Run("fixed", func(t *testing.T) {
		var bad atomic.Value
		srv := newCounter(t, func(_ int64, _ http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got := fmt.Sprintf("%s %s host=%s x-test=%s ct=%s body=%s", r.Method, r.URL.Path, r.Host,
				r.Header.Get("X-Test"), r.Header.Get("Content-Type"), body)
			if want := `POST /v1/x host=api.test x-test=yes ct=application/json body={"a":1}`; got != want {
				bad.Store(got)
			}
		})
		h := http.Header{}
		h.Set("X-Test", "yes")
		h.Set("Content-Type", "application/json")
		h.Set("Host", "api.test")
		res, err := Run(t.Context(), Config{Method: http.MethodPost, URL: srv.URL + "/v1/x", Header: h,
			Body: []byte(`{"a":1}`), Concurrency: 3, MaxRequests: 30})
		if err != nil {
			t.Fatal(err)
		}
		if got := bad.Load(); got != nil {
			t.Errorf("server got %s", got)
		}
		if res.Requests != 30 || res.Errors != 0 {
			t.Errorf("result %v", res)
		}
	})

	t.Run("Requests numbers each request once", func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]int{}
		srv := newCounter(t, func(_ int64, _ http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.URL.Query().Get("i")]++
			mu.Unlock()
		})
		res, err := Run(t.Context(), Config{
			Requests: func(i int) (*http.Request, error) {
				return http.NewRequest(http.MethodGet, srv.URL+"/?i="+strconv.Itoa(i), nil)
			},
			Concurrency: 5, MaxRequests: 200,
		})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range 200 {
			if seen[strconv.Itoa(i)] != 1 {
				t.Fatalf("request %d seen %d times", i, seen[strconv.Itoa(i)])
			}
		}
		if len(seen) != 200 || res.Requests != 200 {
			t.Errorf("seen %d distinct, result %d", len(seen), res.Requests)
		}
	})

	t.Run("Requests error stops the run", func(t *testing.T) {
		srv := newCounter(t, nil)
		errBuild := errors.New("no more fixtures")
		_, err := Run(t.Context(), Config{
			Requests: func(i int) (*http.Request, error) {
				if i == 7 {
					return nil, errBuild
				}
				return http.NewRequest(http.MethodGet, srv.URL, nil)
			},
			Concurrency: 2, MaxRequests: 1000,
		})
		if !errors.Is(err, errBuild) {
			t.Fatalf("err = %v, want the builder's", err)
		}
	})
}

func TestRunWithCallerClient(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	res, err := Run(t.Context(), Config{URL: srv.URL, Client: srv.Client(), Concurrency: 4, MaxRequests: 100})
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, res)
	if res.Requests != 100 || n.Load() != 100 || res.StatusCounts[200] != 100 {
		t.Errorf("result %v, server saw %d", res, n.Load())
	}
}

func TestConfig(t *testing.T) {
	roundTripper := struct{ http.RoundTripper }{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"neither", Config{}},
		{"both", Config{URL: "http://127.0.0.1/", Requests: func(int) (*http.Request, error) { return nil, nil }}},
		{"method with Requests", Config{Method: "PUT", Requests: func(int) (*http.Request, error) { return nil, nil }}},
		{"negative concurrency", Config{URL: "http://127.0.0.1/", Concurrency: -1}},
		{"huge concurrency", Config{URL: "http://127.0.0.1/", Concurrency: ConcurrencyLimit + 1}},
		{"negative duration", Config{URL: "http://127.0.0.1/", Duration: -time.Second}},
		{"long duration", Config{URL: "http://127.0.0.1/", Duration: DurationLimit + 1}},
		{"long warm-up", Config{URL: "http://127.0.0.1/", Warmup: DurationLimit + 1}},
		{"negative warm-up", Config{URL: "http://127.0.0.1/", Warmup: -1}},
		{"too many requests", Config{URL: "http://127.0.0.1/", MaxRequests: RequestsLimit + 1}},
		{"negative requests", Config{URL: "http://127.0.0.1/", MaxRequests: -1}},
		{"long timeout", Config{URL: "http://127.0.0.1/", Timeout: DurationLimit + 1}},
		{"opaque transport", Config{URL: "http://127.0.0.1/", Client: &http.Client{Transport: roundTripper}}},
		{"own TLS dial", Config{URL: "http://127.0.0.1/", Client: &http.Client{Transport: &http.Transport{
			DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no") },
		}}}},
		{"bad method", Config{URL: "http://127.0.0.1/", Method: "BAD METHOD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(t.Context(), tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}

	c, err := Config{URL: "http://127.0.0.1/"}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if c.Method != "GET" || c.Concurrency != 1 || c.Duration != DefaultDuration || c.MaxRequests != DefaultMaxRequests ||
		c.Timeout != DefaultTimeout || c.Warmup != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestResultFormat(t *testing.T) {
	r := Result{Concurrency: 16, Requests: 123456, RPS: 41152.04, P50: 312 * time.Microsecond,
		P90: 540 * time.Microsecond, P99: 1200 * time.Microsecond, Max: 8400 * time.Microsecond,
		Errors: 2, Elapsed: 3 * time.Second}
	if got, want := r.TableRow(), "    16     123456     41152.0      0.312      0.540      1.200      8.400        2"; got != want {
		t.Errorf("row\n%q, want\n%q", got, want)
	}
	if len(TableHeader()) != len(r.TableRow()) {
		t.Errorf("header and row widths differ:\n%s\n%s", TableHeader(), r.TableRow())
	}
	if got, want := r.String(), "c=16 requests=123456 rps=41152.0 p50=312µs p90=540µs p99=1.2ms max=8.4ms errors=2 elapsed=3s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var b strings.Builder
	if err := WriteTable(&b, []Result{r, r}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 3 {
		t.Errorf("table:\n%s", b.String())
	}
}
