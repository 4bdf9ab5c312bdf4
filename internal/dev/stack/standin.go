package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// DefaultPropagation is how long the stand-in takes to make a role assignment effective:
// Azure takes 30 to 90 s.
const DefaultPropagation = 30 * time.Second

// StandIn is the local Entra ID / Microsoft Graph stand-in (cmd/localazure) of one stack,
// with its RBAC front for the customer accounts' blob storage.
type StandIn struct {
	Bin               string // the built cmd/localazure
	Addr              string // host:port, HTTPS
	StorageFrontAddr  string // host:port of the storage front
	CertFile, KeyFile string
	// AzuriteBlob is the blob service root the storage front and container creation
	// reach: Azurite's, or the fault proxy's in front of it.
	AzuriteBlob string
	Accounts    []Account
	Propagation time.Duration
	Log         string
	// Args are further flags (random faults, for one).
	Args []string
	// NoRegistration leaves the customer accounts unregistered at start: for a test of a
	// stack on which someone registered them otherwise.
	NoRegistration bool
}

// NewStandIn is the stand-in of a stack on ports, reaching blob storage at azuriteBlob.
func NewStandIn(files Files, ports Ports, bin, azuriteBlob, log string) *StandIn {
	return &StandIn{Bin: bin, Addr: Addr(ports.StandIn), StorageFrontAddr: Addr(ports.StorageFront),
		CertFile: files.CertFile(), KeyFile: files.KeyFile(), AzuriteBlob: azuriteBlob, Accounts: Accounts(),
		Propagation: DefaultPropagation, Log: log}
}

// URL is its base URL; the token, Graph and managed identity endpoints are under it.
func (s *StandIn) URL() string { return "https://" + s.Addr }

// ControlURL is the base of its control endpoints, which play the customer.
func (s *StandIn) ControlURL() string { return s.URL() + "/control" }

// Start starts the stand-in, waits until it answers and registers the customer accounts
// under CustomerSubscriptionID and CustomerResourceGroup.
func (s *StandIn) Start(ctx context.Context, l *Launcher) (*Process, error) {
	args := []string{"-addr", s.Addr, "-storage-addr", s.StorageFrontAddr, "-cert", s.CertFile, "-key", s.KeyFile,
		"-home-tenant", HomeTenantID, "-mi-client-id", ManagedIdentityClientID, "-mi-object-id", ManagedIdentityObjectID,
		"-identity-header", IdentityHeader, "-tenants", CustomerTenant1 + "," + CustomerTenant2,
		"-propagation", s.Propagation.String(), "-azurite-blob", s.AzuriteBlob, "-accounts", AzuriteAccounts(s.Accounts),
		"-platform-storage", PlatformAccountName, "-api-app-id", APIAppID}
	p, err := l.Start(Command{Name: "the Entra/Graph stand-in", Path: s.Bin, Args: append(args, s.Args...), Log: s.Log})
	if err != nil {
		return nil, err
	}
	client, err := Client(s.CertFile)
	if err != nil {
		p.Stop()
		return nil, err
	}
	if err := WaitHTTP(ctx, p, client, s.URL()+"/"); err != nil {
		p.Stop()
		return nil, err
	}
	if s.NoRegistration {
		return p, nil
	}
	if err := RegisterCustomerAccounts(ctx, &walkthrough.Customer{ControlURL: s.ControlURL(), HTTP: client}); err != nil {
		p.Stop()
		return nil, err
	}
	if err := CreateWorkloadIdentity(ctx, client, s.ControlURL()); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// CreateWorkloadIdentity creates the demo workload identity in CustomerTenant1, as the
// customer's `az identity create` does. The customer has not installed the platform API
// in their tenant yet: that step is theirs.
func CreateWorkloadIdentity(ctx context.Context, client *http.Client, controlURL string) error {
	body, err := json.Marshal(map[string]string{"name": WorkloadIdentityName, "clientId": WorkloadIdentityClientID,
		"principalId": WorkloadIdentityPrincipalID})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, controlURL+"/tenants/"+CustomerTenant1+"/managedIdentities", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("create the workload identity with the stand-in: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("create the workload identity with the stand-in: %s %s", resp.Status, msg)
	}
	return nil
}

// RegisterCustomerAccounts registers every customer account with the stand-in under the
// fixed subscription and resource group, as the customer's Azure has them.
func RegisterCustomerAccounts(ctx context.Context, c *walkthrough.Customer) error {
	for _, a := range CustomerAccounts() {
		if err := c.RegisterStorageAccount(ctx, a.Name, CustomerSubscriptionID, CustomerResourceGroup); err != nil {
			return fmt.Errorf("register %s with the stand-in: %w", a.Name, err)
		}
	}
	return nil
}

// FaultProxy is the storage fault proxy (cmd/faultproxy) in front of a stack's Azurite,
// one listener per service, at zero fault rates: it counts every storage transaction.
type FaultProxy struct {
	Bin                string
	CertFile, KeyFile  string
	Blob, Queue, Table int // ports
	Azurite            Endpoints
	Log                string
}

// NewFaultProxy is the fault proxy of a stack on ports in front of azurite.
func NewFaultProxy(files Files, ports Ports, bin string, azurite Endpoints, log string) *FaultProxy {
	return &FaultProxy{Bin: bin, CertFile: files.CertFile(), KeyFile: files.KeyFile(),
		Blob: ports.ProxyBlob, Queue: ports.ProxyQueue, Table: ports.ProxyTable, Azurite: azurite, Log: log}
}

// Endpoints are the proxy's service roots, used in place of Azurite's.
func (f *FaultProxy) Endpoints() Endpoints {
	return Endpoints{Blob: "https://" + Addr(f.Blob), Queue: "https://" + Addr(f.Queue), Table: "https://" + Addr(f.Table)}
}

// StatsURL serves the proxy's counters.
func (f *FaultProxy) StatsURL() string { return f.Endpoints().Table + "/_faultproxy/stats" }

// Start starts the proxy and waits until its three listeners accept connections.
func (f *FaultProxy) Start(ctx context.Context, l *Launcher) (*Process, error) {
	p, err := l.Start(Command{Name: "the storage fault proxy", Path: f.Bin, Log: f.Log, Args: []string{
		"-cert", f.CertFile, "-key", f.KeyFile,
		"-blob-addr", Addr(f.Blob), "-queue-addr", Addr(f.Queue), "-table-addr", Addr(f.Table),
		"-azurite-blob", f.Azurite.Blob, "-azurite-queue", f.Azurite.Queue, "-azurite-table", f.Azurite.Table}})
	if err != nil {
		return nil, err
	}
	if err := WaitPorts(ctx, p, f.Blob, f.Queue, f.Table); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// HandlerReady waits until the handler at url answers.
func HandlerReady(ctx context.Context, p *Process, url string) error {
	return WaitHTTP(ctx, p, http.DefaultClient, url+"/")
}
