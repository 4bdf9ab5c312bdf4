package faultproxy

import (
	"net"
	"net/http"
	"strings"
)

// Stats are the proxy's counters, per service.
type Stats struct {
	Services map[Service]ServiceStats `json:"services"`
}

// ServiceStats are one service's counters since the proxy started or was last reset.
type ServiceStats struct {
	// Requests is every storage request received (control requests are not counted).
	Requests int64 `json:"requests"`
	// Forwarded is the requests that reached Azurite: Requests less Busy and Timeout
	// faults, and less requests whose client went away first.
	Forwarded int64 `json:"forwarded"`
	// Operations counts the requests received per operation, e.g. "POST batch".
	Operations map[string]int64 `json:"operations"`
	// Faults counts the faults injected, by kind.
	Faults Faults `json:"faults"`
	// OperationFaults counts the faults injected per operation.
	OperationFaults map[string]int64 `json:"operation_faults"`
}

// Faults counts injected faults by kind.
type Faults struct {
	// Busy is 503 ServerBusy answered without forwarding.
	Busy int64 `json:"busy"`
	// LostBusy is requests Azurite completed whose answer was replaced by 503 ServerBusy.
	LostBusy int64 `json:"lost_busy"`
	// LostDropped is requests Azurite completed whose connection was dropped instead of
	// answered.
	LostDropped int64 `json:"lost_dropped"`
	// Timeout is requests held and then dropped without forwarding.
	Timeout int64 `json:"timeout"`
	// Dropped is enqueues answered as done and never forwarded: messages lost outright.
	Dropped int64 `json:"dropped"`
	// Outage is requests answered 503 ServerBusy by an Outage.
	Outage int64 `json:"outage"`
}

// Total is the number of faults of every kind.
func (f Faults) Total() int64 {
	return f.Busy + f.LostBusy + f.LostDropped + f.Timeout + f.Dropped + f.Outage
}

func newServiceStats() *ServiceStats {
	return &ServiceStats{Operations: map[string]int64{}, OperationFaults: map[string]int64{}}
}

func (s *ServiceStats) clone() ServiceStats {
	c := *s
	c.Operations = make(map[string]int64, len(s.Operations))
	for k, v := range s.Operations {
		c.Operations[k] = v
	}
	c.OperationFaults = make(map[string]int64, len(s.OperationFaults))
	for k, v := range s.OperationFaults {
		c.OperationFaults[k] = v
	}
	return c
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Stats{Services: make(map[Service]ServiceStats, len(p.stats))}
	for svc, st := range p.stats {
		out.Services[svc] = st.clone()
	}
	return out
}

// Reset zeroes the counters and returns what they held.
func (p *Proxy) Reset() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := Stats{Services: make(map[Service]ServiceStats, len(p.stats))}
	for svc, st := range p.stats {
		out.Services[svc] = st.clone()
		p.stats[svc] = newServiceStats()
	}
	return out
}

// Sub returns the counters accumulated since before was taken (s less before), so a
// caller can measure one stretch of work without resetting a shared proxy.
func (s Stats) Sub(before Stats) Stats {
	out := Stats{Services: make(map[Service]ServiceStats, len(s.Services))}
	for svc, now := range s.Services {
		was := before.Services[svc]
		d := ServiceStats{
			Requests:  now.Requests - was.Requests,
			Forwarded: now.Forwarded - was.Forwarded,
			Faults: Faults{
				Busy:        now.Faults.Busy - was.Faults.Busy,
				LostBusy:    now.Faults.LostBusy - was.Faults.LostBusy,
				LostDropped: now.Faults.LostDropped - was.Faults.LostDropped,
				Timeout:     now.Faults.Timeout - was.Faults.Timeout,
				Dropped:     now.Faults.Dropped - was.Faults.Dropped,
				Outage:      now.Faults.Outage - was.Faults.Outage,
			},
			Operations:      subCounts(now.Operations, was.Operations),
			OperationFaults: subCounts(now.OperationFaults, was.OperationFaults),
		}
		out.Services[svc] = d
	}
	return out
}

func subCounts(now, was map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range now {
		if d := v - was[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Requests is the number of storage requests over every service.
func (s Stats) Requests() int64 {
	var n int64
	for _, st := range s.Services {
		n += st.Requests
	}
	return n
}

// Faults is the number of faults injected over every service.
func (s Stats) Faults() int64 {
	var n int64
	for _, st := range s.Services {
		n += st.Faults.Total()
	}
	return n
}

// Operation names what a storage request asks for: its method and the kind of resource
// it acts on, plus the comp parameter when there is one, e.g. "PUT entity", "POST batch",
// "POST messages", "GET container?comp=list", "POST service?comp=userdelegationkey".
//
// Table kinds: service, tables (the Tables collection), batch, entity (one entity by
// key), entities (a query or an insert). Queue kinds: service, queue, messages, message.
// Blob kinds: service, container, blob.
func Operation(svc Service, r *http.Request) string {
	segs := strings.FieldsFunc(r.URL.Path, func(c rune) bool { return c == '/' })
	if !productStyle(r.Host) && len(segs) > 0 {
		segs = segs[1:] // the account
	}
	kind := "service"
	switch svc {
	case ServiceTable:
		if len(segs) > 0 {
			first := segs[0]
			switch {
			case first == "Tables" || strings.HasPrefix(first, "Tables("):
				kind = "tables"
			case first == "$batch":
				kind = "batch"
			case strings.Contains(first, "(") && !strings.HasSuffix(first, "()"):
				kind = "entity"
			default:
				kind = "entities"
			}
		}
	case ServiceQueue:
		kind = [...]string{"service", "queue", "messages", "message"}[min(len(segs), 3)]
	case ServiceBlob:
		kind = [...]string{"service", "container", "blob"}[min(len(segs), 2)]
	}
	if comp := r.URL.Query().Get("comp"); comp != "" {
		kind += "?comp=" + comp
	}
	return r.Method + " " + kind
}

// productStyle reports whether host names the account, as <account>.blob.localhost or
// <account>.table.core.windows.net do, rather than an IP address or localhost.
func productStyle(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host != "localhost" && net.ParseIP(host) == nil && strings.Contains(host, ".")
}
