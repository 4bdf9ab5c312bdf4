// Command handler is the managed Azure credentials backend: an Azure Functions custom
// handler that serves the credential API, and, run by itself, the same API against any
// Storage account (Azurite for local work).
//
//	handler [serve]                 serve the API (under the Functions host, or standalone on the local stack)
//	handler token --org ORG [...]   mint a local API token (local stack only)
//
// Settings come from local.settings.json (Values) and the environment; see
// local.settings.json.example. Without AZCREDS_LOCAL_STACK=true the handler is in Azure
// mode: it runs only under the Functions host, reaches only one Azure cloud's Microsoft
// endpoints and refuses every local-only setting (internal/config).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/activeloopai/azcreds/handlers"
	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/azure/blob"
	"github.com/activeloopai/azcreds/internal/azure/graph"
	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/localdial"
	"github.com/activeloopai/azcreds/internal/profiling"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/queue/azurequeue"
	"github.com/activeloopai/azcreds/internal/store"
	"github.com/activeloopai/azcreds/internal/wizard"
	"github.com/activeloopai/azcreds/internal/worker"
)

const settingsFile = "local.settings.json"

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "token":
		err = mintToken(args)
	default:
		err = fmt.Errorf("unknown command %q (want serve or token)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "handler:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	settings := fs.String("settings", settingsFile, "local.settings.json to read Values from (a missing file is fine)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*settings)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Local stack only (Azure mode refuses the setting): the profiles on a loopback
	// listener of their own, never on the API's.
	if cfg.LocalPprofAddr != "" {
		prof, err := profiling.Start(cfg.LocalPprofAddr, log)
		if err != nil {
			return err
		}
		defer prof.Close()
		log.Info("serving profiles", "addr", prof.Addr())
	}
	return run(ctx, stop, cfg, log)
}

// run listens, builds the handler and its background work, serves until ctx ends, and
// then drains both; stop ends ctx's signal handling, so a second signal ends the process.
func run(ctx context.Context, stop context.CancelFunc, cfg config.Config, log *slog.Logger) error {
	// The Functions host probes the port within seconds of start: listen first.
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	handler, jobs, err := build(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      handlers.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Standalone, the queue worker runs beside the server. Its queues are open (build).
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	workerDone := make(chan error, 1)
	if jobs != nil {
		go func() { workerDone <- jobs.Run(workerCtx) }()
	} else {
		workerDone <- nil
	}
	log.Info("serving", "addr", ln.Addr().String(), "functions_host", cfg.FunctionsHost, "local_stack", cfg.LocalStack,
		"cloud", cfg.Cloud.Name, "queue_worker", jobs != nil)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	// Stop taking work on both sides at once, then let both drain: the worker dequeues
	// nothing more and finishes its jobs in flight (each bounded by its visibility
	// timeout) while the server finishes its requests. Neither hands work to the other in
	// memory, so no order loses anything; a kill before the end loses nothing either
	// (an undeleted message comes back after its visibility timeout).
	stop() // a second signal ends the process at once (even then nothing is lost)
	stopWorker()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var shutdownErr error
	if err := srv.Shutdown(shutdownCtx); err != nil {
		shutdownErr = fmt.Errorf("shutdown: %w", err)
	}
	if serveErr == nil {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	workerErr := <-workerDone
	return errors.Join(serveErr, shutdownErr, workerErr)
}

// build wires config -> clients -> the domain's job types -> handlers. Under the Functions
// host (or on the local stack with AZCREDS_LOCAL_INVOCATIONS, where a test plays the host)
// the handler also serves the host's queue- and timer-trigger invocations; otherwise the
// returned background work consumes the queues, sweeps health on AZCREDS_HEALTH_INTERVAL and
// reconciles on AZCREDS_RECONCILE_INTERVAL instead (nil when the invocations are served).
func build(ctx context.Context, cfg config.Config, log *slog.Logger) (http.Handler, background, error) {
	a, err := openAdapters(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	d, err := newDomain(cfg, a, log)
	if err != nil {
		return nil, nil, err
	}
	authn, err := authenticator(cfg)
	if err != nil {
		return nil, nil, err
	}
	log.Info("authentication", "workload_identities", authn.WorkloadIdentities(), "api_app_id", cfg.APIAppID)
	api := handlers.New(d.onboarding, d.issuance, d.workloads, authn, log, handlers.WithHealthLog(d.health))
	if cfg.FunctionsHost || cfg.LocalInvocations {
		invoker := handlers.NewInvoker(d.runner, log, handlers.WithHealthSweep(d.health), handlers.WithReconciler(d.reconciler))
		served, err := withWizard(cfg, handlers.Compose(api, invoker), log)
		return served, nil, err
	}
	work, err := standaloneWork(ctx, cfg, a, d, log)
	if err != nil {
		return nil, nil, err
	}
	served, err := withWizard(cfg, api, log)
	return served, work, err
}

// standaloneWork is what the Functions host would run when there is none: the queue worker,
// and the timers' twins. Each twin takes a lease in the table, so that of several instances
// one does the work per period, as the host runs a timer function on one instance.
func standaloneWork(ctx context.Context, cfg config.Config, a *adapters, d *domain, log *slog.Logger) (background, error) {
	consumed, err := worker.Open(ctx, a.queues, a.scheduler)
	if err != nil {
		return nil, err
	}
	queueWorker, err := worker.New(consumed, d.runner, worker.Options{Log: log.With("component", "worker")})
	if err != nil {
		return nil, err
	}
	holder := instanceID()
	work := together{queueWorker}
	if cfg.HealthInterval > 0 {
		work = append(work, &worker.Ticker{Name: queue.HealthSweep.Function, Interval: cfg.HealthInterval, Lease: a.store,
			Holder: holder, Log: log.With("component", "health_sweep"), Work: func(ctx context.Context) error {
				_, err := d.health.SweepHealth(ctx)
				return err
			}})
	}
	if cfg.ReconcileInterval > 0 {
		work = append(work, &worker.Ticker{Name: queue.Reconcile.Function, Interval: cfg.ReconcileInterval, Lease: a.store,
			Holder: holder, Log: log.With("component", "reconciler"), Work: func(ctx context.Context) error {
				_, err := d.reconciler.Reconcile(ctx)
				return err
			}})
	}
	return work, nil
}

// instanceID names this process in the timers' leases: host, process id and a random part.
func instanceID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}

// adapters are the Azure clients behind the domain's ports, all signed in as the backend's
// managed identity (or, for a customer's storage, as the credential's service principal
// through the token chain).
type adapters struct {
	queues     *azqueue.ServiceClient
	store      *store.Store
	scheduler  *azurequeue.Queues
	poison     *azurequeue.Poison
	directory  *graph.Client
	finder     *graph.Finder
	prober     *blob.Prober
	signer     *blob.Signer
	containers *blob.Containers
}

func openAdapters(ctx context.Context, cfg config.Config, log *slog.Logger) (*adapters, error) {
	miOpts := &azidentity.ManagedIdentityCredentialOptions{}
	if cfg.ManagedIdentityClientID != "" {
		miOpts.ID = azidentity.ClientID(cfg.ManagedIdentityClientID)
	}
	mi, err := azidentity.NewManagedIdentityCredential(miOpts)
	if err != nil {
		return nil, fmt.Errorf("managed identity: %w", err)
	}
	a := &adapters{}
	tables, queues, err := storageClients(cfg.Storage)
	if err != nil {
		return nil, err
	}
	a.queues = queues
	if a.store, err = store.Open(ctx, tables, cfg.TableName,
		store.WithLimits(store.Limits{Credentials: cfg.MaxCredentials, Workspaces: cfg.MaxWorkspaces,
			WorkloadIdentities: cfg.MaxWorkloadIdentities})); err != nil {
		return nil, err
	}
	queueOpts := azurequeue.Options{NamePrefix: cfg.QueuePrefix}
	if a.scheduler, err = azurequeue.Open(ctx, queues, queueOpts); err != nil {
		return nil, err
	}
	if a.poison, err = azurequeue.OpenPoison(ctx, queues, queueOpts); err != nil {
		return nil, err
	}
	if a.directory, err = graph.New(mi, graph.Options{BaseURL: cfg.GraphBaseURL, Scope: cfg.Cloud.GraphScope}); err != nil {
		return nil, err
	}
	chain, err := identity.New(mi, identity.Options{AuthorityHost: cfg.AuthorityHost, TokenExchangeAudience: cfg.Cloud.TokenExchangeAudience})
	if err != nil {
		return nil, err
	}
	a.finder = graph.NewFinder(a.directory, chain)
	transport, err := blobTransport(cfg)
	if err != nil {
		return nil, err
	}
	if a.prober, err = blob.NewProber(chain, blob.Options{EndpointTemplate: cfg.BlobEndpointTemplate,
		Transport: transport, Logger: log.With("component", "access_probe")}); err != nil {
		return nil, err
	}
	if a.signer, err = blob.NewSigner(chain, mi, blob.SignerOptions{EndpointTemplate: cfg.BlobEndpointTemplate,
		Transport: transport, NoCache: !cfg.DelegationKeyCache}); err != nil {
		return nil, err
	}
	// The environment default's containers, one per organization, created by the managed
	// identity at the organization's first SAS.
	a.containers, err = blob.NewContainers(mi, blob.ContainersOptions{EndpointTemplate: cfg.BlobEndpointTemplate,
		Transport: transport, Logger: log.With("component", "environment_default")})
	return a, err
}

// blobTransport is the customers' blob endpoints' transport: the SDK's default in Azure; on
// the local stack, <account>.blob.localhost reaches the stand-in's storage front, and other
// account names fail to resolve, as a missing account's do in Azure.
func blobTransport(cfg config.Config) (policy.Transporter, error) {
	if cfg.LocalBlobAddr == "" {
		return nil, nil
	}
	dial, err := localdial.New(cfg.LocalBlobAddr, cfg.LocalBlobAccounts)
	if err != nil {
		return nil, err
	}
	return dial.Client(nil), nil
}

// domain is one instance's job types.
type domain struct {
	onboarding *credential.Onboarding
	issuance   *credential.Issuance
	health     *credential.HealthMonitor
	runner     *credential.Runner
	workloads  *credential.WorkloadIdentities
	reconciler *credential.Reconciler
}

func newDomain(cfg config.Config, a *adapters, log *slog.Logger) (*domain, error) {
	dc := domainConfig(cfg)
	// One resolution cache per instance: issuance fills it, onboarding's deletes and
	// default changes empty an organization's part of it.
	resolutions := credential.NewResolutionCache(cfg.ResolutionCacheTTL)
	// One table of remembered rows per instance, shared by the commands and the jobs: a
	// submit's job starts from the row its submit wrote.
	rows := credential.WithRecentRows(credential.NewRecentRows(0, 0, nil))
	d := &domain{}
	var err error
	if d.onboarding, err = credential.NewOnboarding(dc, a.store, a.store, a.directory, a.scheduler, resolutions, log, rows); err != nil {
		return nil, err
	}
	if d.issuance, err = credential.NewIssuance(dc, a.store, a.store, a.signer, a.containers, resolutions, log); err != nil {
		return nil, err
	}
	jobs, err := credential.NewJobs(dc, a.store, a.store, a.store, a.directory, a.scheduler, a.finder, a.prober, log, rows)
	if err != nil {
		return nil, err
	}
	if d.health, err = credential.NewHealthMonitor(dc, a.store, a.store, a.scheduler, a.prober, log); err != nil {
		return nil, err
	}
	if d.runner, err = credential.NewRunner(jobs, d.health, log); err != nil {
		return nil, err
	}
	if d.reconciler, err = credential.NewReconciler(dc, a.store, a.store, a.scheduler, a.poison, log.With("component", "reconciler")); err != nil {
		return nil, err
	}
	d.workloads, err = credential.NewWorkloadIdentities(dc, a.store, log)
	return d, err
}

// domainConfig is the part of the settings the domain reads.
func domainConfig(cfg config.Config) credential.Config {
	return credential.Config{
		HomeTenantID:            cfg.HomeTenantID,
		ManagedIdentityObjectID: cfg.ManagedIdentityObjectID,
		Cloud:                   cfg.DomainCloud(),
		AdminConsentRedirectURI: cfg.AdminConsentRedirectURI,
		SPPollWindow:            cfg.SPPollWindow,
		AccessProbeWindow:       cfg.AccessProbeWindow,
		PropagationGrace:        cfg.PropagationGrace,
		SPPollInterval:          cfg.SPPollInterval,
		AccessProbeInterval:     cfg.AccessProbeInterval,
		CreateGuardDelay:        cfg.CreateGuardDelay,
		EnvironmentDefault: credential.EnvironmentDefault{Account: cfg.DefaultStorageAccount,
			ContainerPrefix: cfg.DefaultContainerPrefix, Prefix: cfg.DefaultPrefix},
		ResolutionCacheTTL: cfg.ResolutionCacheTTL,
		HealthSpread:       cfg.HealthSpread,
		HealthRecheck:      cfg.HealthRecheck,
		MaxDeliveries:      queue.MaxDequeueCount,
		CreateRate:         cfg.CreateRate,
		APIAppID:           cfg.APIAppID,
		// How long another instance may still admit a removed workload identity.
		WorkloadIdentityCacheTTL: cfg.WorkloadIdentityCacheTTL,
	}
}

// withWizard serves the wizard page beside the API when the local stack asks for it
// (AZCREDS_LOCAL_WIZARD): its customer panel plays the customer through the stand-in,
// which is the local stack's authority host. The API's routes stay as they are.
func withWizard(cfg config.Config, api http.Handler, log *slog.Logger) (http.Handler, error) {
	if !cfg.LocalWizard {
		return api, nil
	}
	page, err := wizard.New(wizard.Options{StandIn: cfg.AuthorityHost, Log: log.With("component", "wizard")})
	if err != nil {
		return nil, err
	}
	return wizard.Beside(api, page), nil
}

// background is work serve runs beside the server when no Functions host does; it stops
// taking work when ctx ends and returns once its work in flight is done.
type background interface {
	Run(ctx context.Context) error
}

// together runs its parts side by side until each has returned.
type together []background

func (t together) Run(ctx context.Context) error {
	errs := make([]error, len(t))
	var wg sync.WaitGroup
	for i, b := range t {
		wg.Go(func() { errs[i] = b.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// storageClients reaches the backend's own tables and queues: by connection string
// (Azurite), or by service URI with the managed identity (Azure).
func storageClients(s config.Storage) (*aztables.ServiceClient, *azqueue.ServiceClient, error) {
	common := azcore.ClientOptions{Transport: storageHTTPClient()}
	tableOpts := &aztables.ClientOptions{ClientOptions: common}
	queueOpts := &azqueue.ClientOptions{ClientOptions: common}
	if s.ConnectionString != "" {
		t, err := aztables.NewServiceClientFromConnectionString(s.ConnectionString, tableOpts)
		if err != nil {
			return nil, nil, fmt.Errorf("table client: %w", err)
		}
		q, err := azqueue.NewServiceClientFromConnectionString(s.ConnectionString, queueOpts)
		if err != nil {
			return nil, nil, fmt.Errorf("queue client: %w", err)
		}
		return t, q, nil
	}
	opts := &azidentity.ManagedIdentityCredentialOptions{}
	if s.ClientID != "" {
		opts.ID = azidentity.ClientID(s.ClientID)
	}
	var cred azcore.TokenCredential
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("storage identity: %w", err)
	}
	t, err := aztables.NewServiceClient(s.TableServiceURI, cred, tableOpts)
	if err != nil {
		return nil, nil, fmt.Errorf("table client: %w", err)
	}
	q, err := azqueue.NewServiceClient(s.QueueServiceURI, cred, queueOpts)
	if err != nil {
		return nil, nil, fmt.Errorf("queue client: %w", err)
	}
	return t, q, nil
}

// storageHTTPClient keeps as many idle connections to the table and queue endpoints as
// the API has requests in flight: storage speaks HTTP/1.1, one request per connection, and
// with the SDK's default of 10 idle connections per host a busy minute opened hundreds of
// new TLS connections.
func storageHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	return &http.Client{Transport: t}
}

// authenticator accepts the platform's API tokens and, when the platform API's app is
// configured, workload identities' Entra tokens.
func authenticator(cfg config.Config) (*auth.Authenticator, error) {
	platform, err := verifier(cfg)
	if err != nil {
		return nil, err
	}
	var entra *auth.EntraVerifier
	if cfg.APIAppID != "" {
		entra, err = auth.NewEntraVerifier(auth.EntraConfig{Audience: cfg.APIAppID,
			IssuerAuthority: cfg.WorkloadIssuerAuthority, KeysURL: cfg.WorkloadKeysURL})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.KeyAPIAppID, err)
		}
	}
	return auth.NewAuthenticator(platform, entra), nil
}

func verifier(cfg config.Config) (*auth.Verifier, error) {
	ac := auth.Config{Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience, JWKSURL: cfg.AuthJWKSURL}
	if cfg.AuthPublicKeyFile != "" {
		pem, err := os.ReadFile(cfg.AuthPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", config.KeyAuthPublicKeyFile, err)
		}
		ac.PublicKeyPEM = pem
	}
	return auth.NewVerifier(ac)
}
