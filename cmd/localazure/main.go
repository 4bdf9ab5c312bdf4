// Command localazure serves the local stand-in for Microsoft Entra ID and Microsoft Graph
// (package internal/dev/localazure) over HTTPS, for the local stack and for people trying the
// onboarding by hand, and, with -azurite-blob, the stand-in's RBAC front for customer blob
// storage (<account>.blob.localhost) on its own listener (-storage-addr). It only parses
// flags, wires the servers and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/tlsserve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], log, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("localazure failed", "error", err.Error())
		os.Exit(1)
	}
}

type options struct {
	addr, storageAddr, cert, key          string
	homeTenant, miClientID, miObjectID    string
	tenants                               string
	propagation, ficPropagation           time.Duration
	identityHeader, azuriteBlob, accounts string
	platformStorage, apiAppID             string
	chaos                                 localazure.Chaos
	chaosStatuses                         string
}

func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("localazure", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:7443", "listen address (HTTPS)")
	fs.StringVar(&o.cert, "cert", "", "TLS certificate, PEM (required)")
	fs.StringVar(&o.key, "key", "", "TLS private key, PEM (required)")
	fs.StringVar(&o.homeTenant, "home-tenant", "", "the platform's home tenant id (required)")
	fs.StringVar(&o.miClientID, "mi-client-id", "", "client id of the backend's managed identity (required)")
	fs.StringVar(&o.miObjectID, "mi-object-id", "", "object (principal) id of the backend's managed identity (required)")
	fs.StringVar(&o.tenants, "tenants", "", "comma-separated customer tenant ids that exist from the start")
	fs.DurationVar(&o.propagation, "propagation", 30*time.Second, "role assignment propagation delay")
	fs.DurationVar(&o.ficPropagation, "fic-propagation", 0, "federated identity credential propagation delay (AADSTS70021 meanwhile)")
	fs.StringVar(&o.identityHeader, "identity-header", localazure.DefaultIdentityHeader, "X-IDENTITY-HEADER value the managed identity endpoint expects (IDENTITY_HEADER)")
	fs.StringVar(&o.azuriteBlob, "azurite-blob", "", "Azurite blob endpoint without account, e.g. https://127.0.0.1:10000, for container creation")
	fs.StringVar(&o.accounts, "accounts", "", "storage accounts and keys, in AZURITE_ACCOUNTS' format name:key;name2:key2 (with -azurite-blob)")
	fs.StringVar(&o.platformStorage, "platform-storage", "", "ACCOUNT: the platform's own storage account (the environment default), registered in the home tenant with the managed identity granted Storage Blob Data Contributor, as the deployment does in Azure; the backend creates each organization's container there itself")
	fs.StringVar(&o.apiAppID, "api-app-id", "", "client id of the platform API's app registration (multi-tenant, v2.0 tokens), registered in the home tenant: customers' managed identities get tokens for it once it is installed in their tenant; empty: none")
	fs.StringVar(&o.storageAddr, "storage-addr", "127.0.0.1:10443", "listen address (HTTPS) of the RBAC front for <account>.blob.localhost, served with -azurite-blob; empty: none")
	fs.Float64Var(&o.chaos.Probability, "chaos-probability", 0, "chance (0-1) that a Graph, Entra token or managed identity token call fails at random; 0: off")
	fs.StringVar(&o.chaosStatuses, "chaos-statuses", "429,503", "comma-separated statuses random faults answer with (429 carries Retry-After)")
	fs.IntVar(&o.chaos.RetryAfter, "chaos-retry-after", 1, "Retry-After seconds of a random 429 or 503")
	fs.Uint64Var(&o.chaos.Seed, "chaos-seed", 1, "seed of the random faults, for a reproducible run")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	for _, st := range strings.Split(o.chaosStatuses, ",") {
		if st = strings.TrimSpace(st); st == "" {
			continue
		}
		n, err := strconv.Atoi(st)
		if err != nil {
			return options{}, fmt.Errorf("-chaos-statuses: %q is not a status", st)
		}
		o.chaos.Statuses = append(o.chaos.Statuses, n)
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.cert == "" || o.key == "" {
		return options{}, errors.New("-cert and -key are required: azidentity and MSAL talk to Entra only over HTTPS")
	}
	if (o.accounts == "") != (o.azuriteBlob == "") {
		return options{}, errors.New("-azurite-blob and -accounts go together")
	}
	return o, nil
}

// run serves until ctx is done, then shuts down gracefully. ready, when set, receives the
// listening address once the server accepts connections.
func run(ctx context.Context, args []string, log *slog.Logger, ready func(addr string)) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return fmt.Errorf("load TLS key pair: %w", err)
	}
	var tenants []string
	for _, t := range strings.Split(o.tenants, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tenants = append(tenants, t)
		}
	}
	cfg := localazure.Config{
		HomeTenantID:        o.homeTenant,
		ManagedIdentity:     localazure.ManagedIdentity{ClientID: o.miClientID, ObjectID: o.miObjectID},
		Tenants:             tenants,
		PropagationDelay:    o.propagation,
		FICPropagationDelay: o.ficPropagation,
		IdentityHeader:      o.identityHeader,
		Logger:              log,
		APIAppID:            o.apiAppID,
	}
	var azurite *http.Transport
	if o.azuriteBlob != "" {
		if azurite, err = tlsserve.AzuriteTransport(o.cert); err != nil {
			return err
		}
		blob, err := newBlobCreator(o, azurite)
		if err != nil {
			return err
		}
		cfg.Containers = blob
	}
	standIn, err := localazure.New(cfg)
	if err != nil {
		return fmt.Errorf("configure stand-in: %w", err)
	}
	if o.chaos.Probability != 0 {
		if err := standIn.SetChaos(o.chaos); err != nil {
			return fmt.Errorf("random faults: %w", err)
		}
	}
	if o.platformStorage != "" {
		if err := setUpPlatformStorage(standIn, cfg, o.platformStorage); err != nil {
			return err
		}
	}
	listeners := []tlsserve.Listener{{Name: "localazure", Addr: o.addr, Handler: standIn.Handler()}}
	if o.azuriteBlob != "" && o.storageAddr != "" {
		front, err := standIn.StorageFront(localazure.StorageFrontConfig{Azurite: o.azuriteBlob, Transport: azurite})
		if err != nil {
			return fmt.Errorf("configure storage front: %w", err)
		}
		listeners = append(listeners, tlsserve.Listener{Name: "storage front", Addr: o.storageAddr, Handler: front})
	}
	err = tlsserve.Serve(ctx, log, cert, listeners, func(addrs []string) {
		log.Info("localazure listening", "url", "https://"+addrs[0], "home_tenant", o.homeTenant,
			"tenants", tenants, "propagation", o.propagation.String(), "azurite_blob", o.azuriteBlob)
		if len(addrs) > 1 {
			log.Info("storage front listening", "url", "https://"+addrs[1],
				"hosts", "<account>.blob.localhost", "azurite_blob", o.azuriteBlob)
		}
		if ready != nil {
			ready(addrs[0])
		}
	})
	log.Info("localazure stopped")
	return err
}

// newBlobCreator creates containers on Azurite with SharedKey.
func newBlobCreator(o options, transport *http.Transport) (*localazure.SharedKeyBlob, error) {
	keys, err := localazure.ParseAccounts(o.accounts)
	if err != nil {
		return nil, fmt.Errorf("parse -accounts: %w", err)
	}
	return &localazure.SharedKeyBlob{
		Endpoint: o.azuriteBlob,
		Keys:     keys,
		Client:   &http.Client{Transport: transport, Timeout: 30 * time.Second},
	}, nil
}

// platformSubscription and platformResourceGroup hold the platform's own storage account
// in the stand-in's ARM scopes.
const (
	platformSubscription  = "8f1c7a52-3b0e-4d59-9f6a-2c41d07e9b10"
	platformResourceGroup = "platform-rg"
)

// setUpPlatformStorage does locally what the deployment does in Azure for the environment
// default: the account in the home tenant and the managed identity's role on it. No
// container: the backend creates one per organization, through the storage front, with
// that role.
func setUpPlatformStorage(s *localazure.Server, cfg localazure.Config, account string) error {
	if strings.Contains(account, "/") {
		return fmt.Errorf("-platform-storage %q: want ACCOUNT only (each organization gets its own container, which the backend creates)", account)
	}
	if cfg.Containers == nil {
		return errors.New("-platform-storage needs -azurite-blob and -accounts")
	}
	if _, _, err := s.RegisterStorageAccount(localazure.StorageAccount{Name: account, SubscriptionID: platformSubscription,
		ResourceGroup: platformResourceGroup, TenantID: cfg.HomeTenantID}); err != nil {
		return fmt.Errorf("register platform storage: %w", err)
	}
	scope := localazure.Scope{SubscriptionID: platformSubscription, ResourceGroup: platformResourceGroup, Account: account}
	if _, err := s.GrantRole(cfg.ManagedIdentity.ObjectID, string(localazure.RoleBlobDataContributor), scope.String()); err != nil {
		return fmt.Errorf("grant the managed identity its role on platform storage: %w", err)
	}
	return nil
}
