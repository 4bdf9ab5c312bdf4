package stack

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Ports are the loopback ports of one stack.
type Ports struct {
	AzuriteBlob, AzuriteQueue, AzuriteTable int
	// ProxyBlob, ProxyQueue and ProxyTable are the storage fault proxy's, when one runs.
	ProxyBlob, ProxyQueue, ProxyTable int
	StandIn                           int
	StorageFront                      int // the stand-in's RBAC front for <account>.blob.localhost
	Handler                           int
	// Profiles is the handler's profiling listener (AZCREDS_LOCAL_PPROF_ADDR), when one
	// is asked for.
	Profiles int
}

// Default port bases: `make test`'s Azurite and `make load`'s stack, away from `make run`'s.
const (
	DefaultTestPortBase = 10100
	DefaultLoadPortBase = 10200
)

// RunPorts are `make run`'s fixed ports: Azurite's own defaults, 7071 for the handler (the
// Functions host's), 7443 for the stand-in and 10443 for its storage front.
func RunPorts() Ports {
	p := PortsFrom(10000)
	p.StandIn, p.StorageFront, p.Handler = 7443, 10443, 7071
	return p
}

// PortsFrom lays a stack out from base: Azurite on base..base+2, the fault proxy on
// base+3..base+5, the stand-in on base+10, its storage front on base+11, the handler on
// base+12 and its profiling listener on base+13.
func PortsFrom(base int) Ports {
	return Ports{
		AzuriteBlob: base, AzuriteQueue: base + 1, AzuriteTable: base + 2,
		ProxyBlob: base + 3, ProxyQueue: base + 4, ProxyTable: base + 5,
		StandIn: base + 10, StorageFront: base + 11, Handler: base + 12, Profiles: base + 13,
	}
}

// AzuriteEndpoints are the service roots of Azurite on these ports.
func (p Ports) AzuriteEndpoints() Endpoints {
	return Endpoints{Blob: "https://" + Addr(p.AzuriteBlob), Queue: "https://" + Addr(p.AzuriteQueue), Table: "https://" + Addr(p.AzuriteTable)}
}

// ParsePortBase reads a port base from a setting: def when empty.
func ParsePortBase(name, v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1024 || n > 65000 {
		return 0, fmt.Errorf("%s=%s: want a port from 1024 to 65000", name, v)
	}
	return n, nil
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// NamedPort is a port and what listens on it, for messages.
type NamedPort struct {
	Name string
	Port int
}

// RequireFree fails, naming the first one, when something already accepts connections on
// one of the ports.
func RequireFree(ports ...NamedPort) error {
	var errs []error
	for _, p := range ports {
		if portOpen(p.Port) {
			errs = append(errs, fmt.Errorf("port %d (%s) is already in use: is another 'make run', 'make test' or Azurite running? ('lsof -i :%d' names it)", p.Port, p.Name, p.Port))
		}
	}
	return errors.Join(errs...)
}

func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", Addr(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
