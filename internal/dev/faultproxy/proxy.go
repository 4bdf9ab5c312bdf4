package faultproxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Service is one of the three storage services the proxy stands in front of.
type Service string

// The storage services, named as in their endpoints.
const (
	ServiceBlob  Service = "blob"
	ServiceQueue Service = "queue"
	ServiceTable Service = "table"
)

// Services lists every service, in a stable order.
var Services = []Service{ServiceBlob, ServiceQueue, ServiceTable}

// Rates are the chances, each in [0, 1] and together at most 1, that a request meets
// each kind of fault. The zero value injects nothing.
type Rates struct {
	// Busy answers 503 ServerBusy before the request reaches Azurite.
	Busy float64 `json:"busy"`
	// Lost forwards the request and then loses Azurite's answer (503 or a dropped
	// connection): the work is done, the client does not know it.
	Lost float64 `json:"lost"`
	// Timeout holds the request without forwarding it, then drops the connection.
	Timeout float64 `json:"timeout"`
	// Drop applies to enqueues alone (Queue's Put Message, to a queue whose name does not
	// end in -poison): it answers 201 with a made-up message, as if queued, and never
	// forwards it. The message is lost outright, not delayed. It is drawn apart from the
	// other rates, after them.
	Drop float64 `json:"drop"`
}

func (r Rates) validate() error {
	for name, v := range map[string]float64{"busy": r.Busy, "lost": r.Lost, "timeout": r.Timeout, "drop": r.Drop} {
		if v < 0 || v > 1 {
			return fmt.Errorf("rate %s %v is not within [0, 1]", name, v)
		}
	}
	if sum := r.Busy + r.Lost + r.Timeout; sum > 1 {
		return fmt.Errorf("rates add up to %v, more than 1", sum)
	}
	return nil
}

// DefaultHold is how long a timeout fault holds a request when Config.Hold is zero.
const DefaultHold = 5 * time.Second

// Config is the proxy's configuration, validated once by New.
type Config struct {
	// Targets are Azurite's service roots without an account, per service, e.g.
	// ServiceTable: "https://127.0.0.1:10002". Only services named here have a Handler.
	Targets map[Service]string
	// Transport reaches Azurite; a clone of http.DefaultTransport (which trusts
	// SSL_CERT_FILE) when nil.
	Transport http.RoundTripper
	// Rates apply to every service from the start; SetRates changes them.
	Rates Rates
	// Hold is how long a timeout fault holds the request before dropping the connection
	// (a client that gives up earlier ends it earlier). DefaultHold when zero.
	Hold time.Duration
	// Seed seeds the fault decisions. Concurrent requests interleave, so a seed repeats a
	// run exactly only when the requests arrive in the same order.
	Seed uint64
	// Logger receives one line per injected fault. Discarded when nil.
	Logger *slog.Logger
}

// Proxy is the fault proxy. Create it with New; it is safe for concurrent use.
type Proxy struct {
	hold     time.Duration
	log      *slog.Logger
	handlers map[Service]http.Handler

	mu       sync.Mutex
	rng      *rand.Rand
	rates    map[Service]Rates
	stats    map[Service]*ServiceStats
	injected map[Service][]*injection
	outages  []outage
	kept     []string // KeepMessages
}

// outage is an Outage in force.
type outage struct {
	svc     Service
	until   time.Time
	matches []string
}

// New validates cfg and returns a proxy for the services it names.
func New(cfg Config) (*Proxy, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("faultproxy: no target service")
	}
	if err := cfg.Rates.validate(); err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	if cfg.Hold < 0 {
		return nil, errors.New("faultproxy: hold must not be negative")
	}
	p := &Proxy{
		hold:     cfg.Hold,
		log:      cfg.Logger,
		handlers: map[Service]http.Handler{},
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		rates:    map[Service]Rates{},
		stats:    map[Service]*ServiceStats{},
		injected: map[Service][]*injection{},
	}
	if p.hold == 0 {
		p.hold = DefaultHold
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	for svc, target := range cfg.Targets {
		if !slices.Contains(Services, svc) {
			return nil, fmt.Errorf("faultproxy: unknown service %q; one of %v", svc, Services)
		}
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("faultproxy: %s target %q: want a service root such as https://127.0.0.1:10002", svc, target)
		}
		p.rates[svc] = cfg.Rates
		p.stats[svc] = newServiceStats()
		p.handlers[svc] = p.newHandler(svc, u, transport)
	}
	return p, nil
}

// Handler serves svc: the control path under /_faultproxy/ and everything else proxied
// to svc's target. It panics for a service New was not given a target for, a wiring
// mistake.
func (p *Proxy) Handler(svc Service) http.Handler {
	h, ok := p.handlers[svc]
	if !ok {
		panic(fmt.Sprintf("faultproxy: no target for service %q", svc))
	}
	return h
}

// SetRates sets the rates of the named services, of every service when none is named.
func (p *Proxy) SetRates(r Rates, services ...Service) error {
	if err := r.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(services) == 0 {
		for svc := range p.rates {
			services = append(services, svc)
		}
	}
	for _, svc := range services {
		if _, ok := p.rates[svc]; !ok {
			return fmt.Errorf("no target for service %q", svc)
		}
	}
	for _, svc := range services {
		p.rates[svc] = r
	}
	return nil
}

// Rates returns the rates in force per service.
func (p *Proxy) Rates() map[Service]Rates {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Service]Rates, len(p.rates))
	for svc, r := range p.rates {
		out[svc] = r
	}
	return out
}

// Fault is what happens to one request.
type Fault int

// The faults, as the counters name them.
const (
	FaultNone     Fault = iota
	FaultBusy           // 503 ServerBusy, not forwarded
	FaultLostBusy       // forwarded, the answer replaced by 503 ServerBusy
	FaultLostDrop       // forwarded, the connection dropped instead of the answer
	FaultTimeout        // held, then the connection dropped; not forwarded
	FaultDrop           // an enqueue answered as done and never forwarded
	FaultOutage         // 503 ServerBusy during an Outage, not forwarded
)

func (f Fault) String() string {
	return [...]string{"none", "busy", "lost_busy", "lost_dropped", "timeout", "drop", "outage"}[f]
}

// injection is a pending Inject.
type injection struct {
	op    string
	fault Fault
	count int
	then  func() // InjectThen's
}

// Inject makes the next count requests of svc whose operation is op (any operation when
// op is empty; see Operation for the names) meet fault f, whatever the rates say. Tests
// use it to lose exactly one answer, such as the first "POST batch" of an insert, and
// watch what the client's retry does. Injections for one service fire in order.
func (p *Proxy) Inject(svc Service, op string, f Fault, count int) error {
	if f <= FaultNone || f > FaultTimeout {
		return fmt.Errorf("unknown fault %d", f)
	}
	if count <= 0 {
		return errors.New("count must be positive")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.rates[svc]; !ok {
		return fmt.Errorf("no target for service %q", svc)
	}
	p.injected[svc] = append(p.injected[svc], &injection{op: op, fault: f, count: count})
	return nil
}

// InjectThen loses the answer of the next request of svc whose operation is op, as Inject
// does with f (FaultLostBusy or FaultLostDrop), and runs then after Azurite has done the
// work and before the client learns anything: whatever then does happens between the
// request and the client's retry of it, such as another writer moving the row on.
func (p *Proxy) InjectThen(svc Service, op string, f Fault, then func()) error {
	if f != FaultLostBusy && f != FaultLostDrop {
		return fmt.Errorf("InjectThen loses an answer: fault %v is not a lost one", f)
	}
	if then == nil {
		return errors.New("InjectThen needs something to run")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.rates[svc]; !ok {
		return fmt.Errorf("no target for service %q", svc)
	}
	p.injected[svc] = append(p.injected[svc], &injection{op: op, fault: f, count: 1, then: then})
	return nil
}

// takeInjected consumes one firing of the first injection of svc that matches op, and
// returns its fault and what runs once it has fired (nil for most).
func (p *Proxy) takeInjected(svc Service, op string) (Fault, func()) {
	q := p.injected[svc]
	for i, in := range q {
		if in.op != "" && in.op != op {
			continue
		}
		in.count--
		if in.count == 0 {
			p.injected[svc] = slices.Delete(q, i, i+1)
		}
		return in.fault, in.then
	}
	return FaultNone, nil
}

// Outage makes svc answer 503 ServerBusy, without forwarding, to every request whose path,
// query or body holds one of matches, for d: an outage of one partition, say, when the
// matches are the forms a partition key takes in requests (PartitionKey='org-1' in a
// path, "PartitionKey":"org-1" in a body, PartitionKey eq 'org-1' in a filter).
func (p *Proxy) Outage(svc Service, d time.Duration, matches ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.rates[svc]; !ok {
		return fmt.Errorf("no target for service %q", svc)
	}
	if len(matches) == 0 {
		return errors.New("an outage needs something to match")
	}
	p.outages = append(p.outages, outage{svc: svc, until: time.Now().Add(d), matches: slices.Clone(matches)})
	return nil
}

// outageFor returns the matches of the outages of svc in force, dropping ended ones.
func (p *Proxy) outageFor(svc Service) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.outages = slices.DeleteFunc(p.outages, func(o outage) bool { return now.After(o.until) })
	var out []string
	for _, o := range p.outages {
		if o.svc == svc {
			out = append(out, o.matches...)
		}
	}
	return out
}

// inOutage reads r's body (putting it back) and says whether r matches one of matches.
func inOutage(r *http.Request, matches []string) bool {
	text := r.URL.Path + "?" + r.URL.RawQuery
	if q, err := url.QueryUnescape(r.URL.RawQuery); err == nil {
		text += "?" + q
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err == nil {
			r.Body = io.NopCloser(bytes.NewReader(b))
			text += "\n" + string(b)
		}
	}
	for _, m := range matches {
		if strings.Contains(text, m) {
			return true
		}
	}
	return false
}

// KeepMessages spares from Drop every enqueue whose message text holds one of matches,
// read as sent or, when it is base64 (as queue-triggered functions expect), decoded: a
// test keeps the messages of the work it watches while the others are lost. The other
// faults still apply to them. Matches add up over calls and last as long as the proxy.
func (p *Proxy) KeepMessages(matches ...string) error {
	if len(matches) == 0 || slices.Contains(matches, "") {
		return errors.New("messages to keep need something non-empty to match")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kept = append(p.kept, matches...)
	return nil
}

func (p *Proxy) keptMessages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.kept)
}

// messageHolds reads an enqueue's body (putting it back) and says whether its message text,
// as sent or base64-decoded, holds one of matches.
func messageHolds(r *http.Request, matches []string) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	var msg struct {
		Text string `xml:"MessageText"`
	}
	if xml.Unmarshal(b, &msg) != nil {
		return false
	}
	texts := []string{msg.Text}
	if decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(msg.Text)); err == nil {
		texts = append(texts, string(decoded))
	}
	for _, text := range texts {
		for _, m := range matches {
			if strings.Contains(text, m) {
				return true
			}
		}
	}
	return false
}

// decide counts a request of op and draws its fault, with what runs once an injected one
// has fired; droppable says whether Drop applies.
func (p *Proxy) decide(svc Service, op string, droppable bool) (Fault, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats[svc]
	st.Requests++
	st.Operations[op]++
	f, then := p.takeInjected(svc, op)
	if r := p.rates[svc]; f == FaultNone && droppable && r.Drop > 0 && p.rng.Float64() < r.Drop {
		f = FaultDrop
	}
	if r := p.rates[svc]; f == FaultNone && r != (Rates{}) {
		x := p.rng.Float64()
		switch {
		case x < r.Busy:
			f = FaultBusy
		case x < r.Busy+r.Lost:
			f = FaultLostBusy
			if p.rng.IntN(2) == 1 {
				f = FaultLostDrop
			}
		case x < r.Busy+r.Lost+r.Timeout:
			f = FaultTimeout
		}
	}
	switch f {
	case FaultNone:
		return f, nil
	case FaultBusy:
		st.Faults.Busy++
	case FaultLostBusy:
		st.Faults.LostBusy++
	case FaultLostDrop:
		st.Faults.LostDropped++
	case FaultTimeout:
		st.Faults.Timeout++
	case FaultDrop:
		st.Faults.Dropped++
	}
	st.OperationFaults[op]++
	return f, then
}

// countOutage counts a request of op answered by an outage.
func (p *Proxy) countOutage(svc Service, op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats[svc]
	st.Requests++
	st.Operations[op]++
	st.Faults.Outage++
	st.OperationFaults[op]++
}

func (p *Proxy) countForwarded(svc Service) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats[svc].Forwarded++
}

type faultKey struct{}

// thenKey carries what InjectThen runs once the work is done and the answer lost.
type thenKey struct{}

// lostResponse is the error the transport returns for a response it threw away.
type lostResponse struct{ drop bool }

func (e *lostResponse) Error() string { return "response lost on purpose" }

// forwarder reaches Azurite, counts what it forwards and, for a lost-response fault,
// reads Azurite's whole answer (so the work is done) and throws it away.
type forwarder struct {
	p     *Proxy
	svc   Service
	inner http.RoundTripper
}

func (t *forwarder) RoundTrip(req *http.Request) (*http.Response, error) {
	t.p.countForwarded(t.svc)
	resp, err := t.inner.RoundTrip(req)
	f, _ := req.Context().Value(faultKey{}).(Fault)
	if err != nil || (f != FaultLostBusy && f != FaultLostDrop) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if then, _ := req.Context().Value(thenKey{}).(func()); then != nil {
		then()
	}
	return nil, &lostResponse{drop: f == FaultLostDrop}
}

func (p *Proxy) newHandler(svc Service, target *url.URL, transport http.RoundTripper) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Out is a copy of In: only where it connects changes. Out.Host stays the
			// client's, so Azurite resolves the account and the signature holds.
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
		},
		Transport: &forwarder{p: p, svc: svc, inner: transport},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var lost *lostResponse
			switch {
			case errors.As(err, &lost) && lost.drop:
				panic(http.ErrAbortHandler)
			case errors.As(err, &lost):
				writeServerBusy(w, r, svc)
			case r.Context().Err() != nil:
				// The client went away; nobody reads an answer.
			default:
				p.log.Error("faultproxy: Azurite unreachable", "service", string(svc), "error", err.Error())
				w.WriteHeader(http.StatusBadGateway)
			}
		},
	}
	control := p.controlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isControlPath(r.URL.Path) {
			control.ServeHTTP(w, r)
			return
		}
		op := Operation(svc, r)
		if matches := p.outageFor(svc); len(matches) > 0 && inOutage(r, matches) {
			p.countOutage(svc, op)
			p.log.Info("faultproxy: fault", "service", string(svc), "operation", op, "fault", FaultOutage.String())
			writeServerBusy(w, r, svc)
			return
		}
		droppable := svc == ServiceQueue && op == "POST messages" && !strings.Contains(r.URL.Path, "-poison/")
		if kept := p.keptMessages(); droppable && len(kept) > 0 && messageHolds(r, kept) {
			droppable = false
		}
		f, then := p.decide(svc, op, droppable)
		if f != FaultNone {
			p.log.Info("faultproxy: fault", "service", string(svc), "operation", op, "fault", f.String())
		}
		switch f {
		case FaultBusy:
			writeServerBusy(w, r, svc)
			return
		case FaultDrop:
			writeEnqueued(w, r)
			return
		case FaultTimeout:
			hold(r.Context(), p.hold)
			panic(http.ErrAbortHandler)
		}
		ctx := context.WithValue(r.Context(), faultKey{}, f)
		if then != nil {
			ctx = context.WithValue(ctx, thenKey{}, then)
		}
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
}

// hold waits for d or until the client gives up.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
