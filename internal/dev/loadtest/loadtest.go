// Package loadtest measures an HTTP server on this machine: a fixed number of closed-loop
// workers send requests for a bounded time and count, and the result gives exact latency
// percentiles, throughput and status codes.
//
// It is built to be safe to point anywhere by mistake. Every target must be loopback
// (127.0.0.0/8, ::1, localhost, or a name whose every address is loopback): the URL is
// checked before the first request and every dial checks the resolved address again, so
// nothing leaves the machine, not even a first SYN. Every run is bounded in time and in
// requests (30 s and 1,000,000 by default, DurationLimit and RequestsLimit at most), every
// request has a timeout, and a run stops by itself.
//
// What the numbers mean: a worker sends its next request when the previous one has been
// answered (closed loop), so latencies are service times at that concurrency and a slow
// server lowers the request rate instead of queueing requests; this is not an open-loop
// (fixed-rate) test. A latency runs from sending the request to reading the last byte of
// the body. All latencies are kept and sorted, so percentiles are exact (nearest rank), not
// estimated from buckets. On loopback the generator shares the CPU with the server, and its
// own cost is in the numbers.
package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and hard limits of a run.
const (
	DefaultDuration    = 30 * time.Second
	DefaultMaxRequests = 1_000_000
	DefaultTimeout     = 10 * time.Second

	// DurationLimit bounds Duration, Warmup and Timeout each.
	DurationLimit = 10 * time.Minute
	// RequestsLimit bounds MaxRequests; all latencies are kept, 8 bytes each.
	RequestsLimit    = 10_000_000
	ConcurrencyLimit = 4096
)

// errHardStop is the cause when a run outlives every bound it was given plus a margin;
// it means a bug here, not a slow server.
var errHardStop = errors.New("run exceeded its hard time limit")

// Config describes one run. Give either a fixed request (Method, URL, Header, Body) or
// Requests, not both.
type Config struct {
	// Method, URL, Header and Body describe the request every worker sends. Method
	// defaults to GET. A Host header sets the request's Host.
	Method string
	URL    string
	Header http.Header
	Body   []byte

	// Requests, when set, builds request i (0, 1, 2, ... over the whole run, warm-up
	// included; each i once). It is called from several goroutines. Run replaces the
	// request's context with its own and checks its URL like a fixed one; a request
	// with a body needs a fresh body on every call.
	Requests func(i int) (*http.Request, error)

	// Concurrency is the number of workers, each with at most one request in flight
	// (default 1).
	Concurrency int
	// Duration bounds the measured phase (default DefaultDuration). Requests still in
	// flight when it ends are awaited, at most Timeout, and counted.
	Duration time.Duration
	// MaxRequests bounds the requests sent in the measured phase, and separately in the
	// warm-up (default DefaultMaxRequests). The run stops at whichever of Duration and
	// MaxRequests comes first.
	MaxRequests int
	// Warmup is sent before measuring, with the same workers and connections, and is not
	// recorded (default none).
	Warmup time.Duration
	// Timeout bounds every request, body included (default DefaultTimeout). A shorter
	// Client.Timeout wins.
	Timeout time.Duration

	// Client, when set, supplies TLS settings, cookies and redirect policy. Its
	// Transport must be nil or an *http.Transport: Run uses a clone with every dial
	// checked for loopback (its own dial function, if any, is handed only checked
	// loopback IP addresses), no proxy and an idle pool of Concurrency connections.
	// Without it Run uses its own transport and does not follow redirects (a 3xx is a
	// non-2xx answer).
	Client *http.Client

	// resolve answers host names; nil means the system resolver. Tests set it.
	resolve resolver
}

// normalize fills in defaults and validates c once.
func (c Config) normalize() (Config, error) {
	if (c.Requests == nil) == (c.URL == "") {
		return c, errors.New("config: give either URL or Requests")
	}
	if c.Requests != nil && (c.Method != "" || c.Header != nil || c.Body != nil) {
		return c, errors.New("config: Method, Header and Body go with URL, not with Requests")
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = DefaultMaxRequests
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.resolve == nil {
		c.resolve = systemLookup
	}
	switch {
	case c.Concurrency < 0 || c.Concurrency > ConcurrencyLimit:
		return c, fmt.Errorf("config: concurrency %d outside 1..%d", c.Concurrency, ConcurrencyLimit)
	case c.MaxRequests < 0 || c.MaxRequests > RequestsLimit:
		return c, fmt.Errorf("config: max requests %d outside 1..%d", c.MaxRequests, RequestsLimit)
	case c.Duration < 0 || c.Duration > DurationLimit:
		return c, fmt.Errorf("config: duration %s outside (0, %s]", c.Duration, DurationLimit)
	case c.Warmup < 0 || c.Warmup > DurationLimit:
		return c, fmt.Errorf("config: warm-up %s outside [0, %s]", c.Warmup, DurationLimit)
	case c.Timeout < 0 || c.Timeout > DurationLimit:
		return c, fmt.Errorf("config: timeout %s outside (0, %s]", c.Timeout, DurationLimit)
	}
	if c.Client != nil && c.Client.Transport != nil {
		if _, ok := c.Client.Transport.(*http.Transport); !ok {
			return c, fmt.Errorf("config: client transport is %T, want *http.Transport so every dial can be checked for loopback", c.Client.Transport)
		}
	}
	return c, nil
}

// Run sends requests as cfg says and returns what it measured. It returns an error, and no
// result, for a bad config or a target that is not loopback (wrapping ErrNotLoopback); a
// run cut short by ctx returns what it measured so far together with ctx's error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return Result{}, err
	}
	r := &runner{cfg: cfg}
	if err := r.prepare(ctx); err != nil {
		return Result{}, err
	}
	defer r.client.CloseIdleConnections()

	// Whatever happens below, the run ends: each phase stops issuing at its deadline and
	// waits at most one Timeout for the requests in flight.
	hard := cfg.Warmup + cfg.Duration + 2*cfg.Timeout + 5*time.Second
	ctx, stop := context.WithTimeoutCause(ctx, hard, errHardStop)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.cancel = cancel

	var warmup int
	if cfg.Warmup > 0 {
		t, _ := r.phase(ctx, cfg.Warmup, false)
		warmup = t.responses() + t.transportErrs
	}
	var res Result
	if ctx.Err() == nil {
		t, elapsed := r.phase(ctx, cfg.Duration, true)
		res = t.result(cfg.Concurrency, elapsed)
	}
	res.Concurrency = cfg.Concurrency
	res.WarmupRequests = warmup
	if err := r.fatal(); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		if cause := context.Cause(ctx); !errors.Is(cause, err) {
			return res, fmt.Errorf("run stopped early: %w: %w", cause, err)
		}
		return res, fmt.Errorf("run stopped early: %w", err)
	}
	return res, nil
}

type runner struct {
	cfg    Config
	client *http.Client
	tmpl   *http.Request // the fixed request, when there is one
	seq    atomic.Int64  // next i for cfg.Requests
	cancel context.CancelCauseFunc

	checked sync.Map // host -> error, for URLs from cfg.Requests

	fatalMu  sync.Mutex
	fatalErr error
}

// prepare checks the fixed target and builds the client. Nothing has been dialled yet.
func (r *runner) prepare(ctx context.Context) error {
	cfg := r.cfg
	if cfg.URL != "" {
		var body io.Reader
		if len(cfg.Body) > 0 {
			body = bytes.NewReader(cfg.Body)
		}
		req, err := http.NewRequest(cfg.Method, cfg.URL, body)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := checkURL(ctx, req.URL, cfg.resolve); err != nil {
			return err
		}
		req.Header = cfg.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		if h := req.Header.Get("Host"); h != "" {
			req.Host = h
			req.Header.Del("Host")
		}
		r.tmpl = req
	}

	g := &guard{resolve: cfg.resolve, refused: r.fail}
	var base *http.Transport
	client := &http.Client{
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if c := cfg.Client; c != nil {
		base, _ = c.Transport.(*http.Transport) // normalize refused other types
		if base == nil {
			base = http.DefaultTransport.(*http.Transport)
		}
		client.Jar = c.Jar
		client.CheckRedirect = c.CheckRedirect
		if c.Timeout > 0 && c.Timeout < cfg.Timeout {
			client.Timeout = c.Timeout
		}
	}
	t, err := newTransport(base, cfg.Concurrency, g)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	client.Transport = t
	r.client = client
	return nil
}

// fail records the first error that invalidates the run (a refused target, a request
// that cannot be built) and stops every worker.
func (r *runner) fail(err error) {
	r.fatalMu.Lock()
	if r.fatalErr == nil {
		r.fatalErr = err
	}
	r.fatalMu.Unlock()
	if r.cancel != nil {
		r.cancel(err)
	}
}

func (r *runner) fatal() error {
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	return r.fatalErr
}

// newRequest returns the next request bound to ctx, its target checked.
func (r *runner) newRequest(ctx context.Context) (*http.Request, error) {
	if r.tmpl != nil {
		req := r.tmpl.Clone(ctx)
		if r.tmpl.GetBody != nil {
			body, err := r.tmpl.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
		return req, nil
	}
	i := int(r.seq.Add(1) - 1)
	req, err := r.cfg.Requests(i)
	if err != nil {
		return nil, fmt.Errorf("build request %d: %w", i, err)
	}
	if req == nil || req.URL == nil {
		return nil, fmt.Errorf("build request %d: no request or URL", i)
	}
	if err := r.check(ctx, req.URL); err != nil {
		return nil, err
	}
	return req.WithContext(ctx), nil
}

// check is checkURL remembered per scheme and host for the run; the dial guard still
// checks every connection's address.
func (r *runner) check(ctx context.Context, u *url.URL) error {
	key := u.Scheme + "://" + u.Host
	if err, ok := r.checked.Load(key); ok {
		if err == nil {
			return nil
		}
		return err.(error)
	}
	err := checkURL(ctx, u, r.cfg.resolve)
	r.checked.Store(key, err)
	return err
}

// phase runs the workers for d or until limit requests have been sent, waits for the
// requests in flight, and returns what they saw and how long it took.
func (r *runner) phase(ctx context.Context, d time.Duration, record bool) (tally, time.Duration) {
	c := r.cfg.Concurrency
	limit := int64(r.cfg.MaxRequests)
	var issued atomic.Int64
	tallies := make([]tally, c)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range c {
		t := &tallies[w]
		t.status = map[int]int{}
		if record {
			t.lat = make([]time.Duration, 0, min(r.cfg.MaxRequests/c+1, 1<<14))
		}
		wg.Go(func() {
			done := ctx.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if !time.Now().Before(deadline) || issued.Add(1) > limit || !r.do(ctx, t, record) {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all tally
	all.status = map[int]int{}
	for _, t := range tallies {
		all.merge(t)
	}
	return all, elapsed
}

// do sends one request and records it in t. It returns false when the run must stop.
func (r *runner) do(ctx context.Context, t *tally, record bool) bool {
	req, err := r.newRequest(ctx)
	if err != nil {
		r.fail(err)
		return false
	}
	start := time.Now()
	resp, err := r.client.Do(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
		_, err = io.Copy(io.Discard, resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
	}
	latency := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			// Cut off by the run's end (interrupt or a refused target), not the
			// server's doing: not recorded.
			return false
		}
		t.transportErrs++
		if t.firstErr == "" {
			t.firstErr = describe(err)
		}
		return true
	}
	t.status[status]++
	if record {
		t.lat = append(t.lat, latency)
	}
	return true
}

// describe is err's text without the request URL, which may carry secrets in its query.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// tally is what one worker saw; workers do not share one, so recording takes no lock.
type tally struct {
	lat           []time.Duration
	status        map[int]int
	transportErrs int
	firstErr      string
}

func (t *tally) merge(o tally) {
	t.lat = append(t.lat, o.lat...)
	for code, n := range o.status {
		t.status[code] += n
	}
	t.transportErrs += o.transportErrs
	if t.firstErr == "" {
		t.firstErr = o.firstErr
	}
}

func (t *tally) responses() int {
	n := 0
	for _, v := range t.status {
		n += v
	}
	return n
}

func (t *tally) result(concurrency int, elapsed time.Duration) Result {
	slices.Sort(t.lat)
	res := Result{
		Concurrency:     concurrency,
		Requests:        t.responses() + t.transportErrs,
		TransportErrors: t.transportErrs,
		ErrorSample:     t.firstErr,
		P50:             percentile(t.lat, 50),
		P90:             percentile(t.lat, 90),
		P99:             percentile(t.lat, 99),
		Max:             percentile(t.lat, 100),
		Elapsed:         elapsed,
		StatusCounts:    t.status,
	}
	res.Errors = t.transportErrs
	for code, n := range t.status {
		if code < 200 || code > 299 {
			res.Errors += n
		}
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	return res
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest value with at
// least p% of the values at or below it. Integer arithmetic keeps it exact; 0 when empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := max((p*n+99)/100, 1)
	return sorted[min(rank, n)-1]
}
