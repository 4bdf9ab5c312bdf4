package credentialtest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/clocktest"
	"github.com/activeloopai/azcreds/internal/credential"
)

// Ports are the domain's ports, in memory or real, for Wire.
type Ports struct {
	Store      credential.Store
	Workspaces credential.WorkspaceStore
	Health     credential.HealthStore
	Index      credential.WindowIndex
	Poison     credential.PoisonQueue
	Scheduler  credential.Scheduler
	Directory  credential.Directory
	Finder     credential.Finder
	Prober     credential.Prober
	Signer     credential.Signer
	Containers credential.ContainerCreator
	// WorkloadIdentities keeps the organizations' registries of workload identities.
	WorkloadIdentities credential.WorkloadIdentityStore
}

// T0 is where the fakes' clock starts.
var T0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Fakes is one in-memory implementation of each port, on one clock.
type Fakes struct {
	Clock      *clocktest.Clock
	Store      *Store
	Scheduler  *Scheduler
	Directory  *Directory
	Finder     *Finder
	Prober     *Prober
	Signer     *Signer
	Containers *Containers
}

// NewFakes returns fresh fakes on a clock standing at T0.
func NewFakes(opts ...StoreOption) *Fakes {
	clock := clocktest.New(T0)
	return &Fakes{Clock: clock, Store: NewStore(append([]StoreOption{WithStoreClock(clock.Now)}, opts...)...),
		Scheduler: NewScheduler(clock.Now), Directory: NewDirectory(), Finder: &Finder{}, Prober: &Prober{},
		Signer: &Signer{}, Containers: &Containers{}}
}

// Ports are the fakes as the domain's ports.
func (f *Fakes) Ports() Ports {
	return Ports{Store: f.Store, Workspaces: f.Store, Health: f.Store, Index: f.Store, Poison: f.Scheduler, Scheduler: f.Scheduler,
		Directory: f.Directory, Finder: f.Finder, Prober: f.Prober, Signer: f.Signer, Containers: f.Containers,
		WorkloadIdentities: f.Store}
}

// Setup is what Wire builds the domain from.
type Setup struct {
	// Config; an empty HomeTenantID or ManagedIdentityObjectID is filled in.
	Config credential.Config
	Ports
	// Now is the domain's clock; time.Now when nil.
	Now func() time.Time
	// Log gets the domain's logs; discarded when nil.
	Log *slog.Logger
	// Resolutions is the instance's resolution cache; a new one of Config's TTL when nil.
	Resolutions *credential.ResolutionCache
	// Rows are the rows the instance remembers (credential.RecentRows), shared by its
	// Onboarding and Jobs as main shares them; a new table on Now when nil, none at all
	// with ReadEveryRow.
	Rows         *credential.RecentRows
	ReadEveryRow bool
}

// Domain is the job types of one instance, wired on one set of ports as main wires them.
type Domain struct {
	Onboarding *credential.Onboarding
	Jobs       *credential.Jobs
	// Rows are the rows Onboarding and Jobs remember; nil with Setup.ReadEveryRow.
	Rows       *credential.RecentRows
	Issuance   *credential.Issuance
	Health     *credential.HealthMonitor
	Runner     *credential.Runner
	Reconciler *credential.Reconciler
	// WorkloadIdentities is the registry of workload identities, with its lookup cache.
	WorkloadIdentities *credential.WorkloadIdentities
}

// Wire builds every job type from s; it fails the test when one cannot be built.
func Wire(t testing.TB, s Setup) *Domain {
	t.Helper()
	cfg := s.Config
	if cfg.HomeTenantID == "" {
		cfg.HomeTenantID = "home"
	}
	if cfg.ManagedIdentityObjectID == "" {
		cfg.ManagedIdentityObjectID = "mi"
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var opts []credential.Option
	if s.Now != nil {
		opts = append(opts, credential.WithClock(s.Now))
	}
	res := s.Resolutions
	if res == nil {
		res = credential.NewResolutionCache(cfg.ResolutionCacheTTL)
	}
	p := s.Ports
	var d Domain
	if !s.ReadEveryRow {
		d.Rows = s.Rows
		if d.Rows == nil {
			d.Rows = credential.NewRecentRows(0, 0, s.Now)
		}
	}
	remembering := append(opts[:len(opts):len(opts)], credential.WithRecentRows(d.Rows))
	var err error
	d.Onboarding, err = credential.NewOnboarding(cfg, p.Store, p.Index, p.Directory, p.Scheduler, res, log, remembering...)
	if err == nil {
		d.Jobs, err = credential.NewJobs(cfg, p.Store, p.Workspaces, p.Index, p.Directory, p.Scheduler, p.Finder, p.Prober, log, remembering...)
	}
	if err == nil {
		d.Issuance, err = credential.NewIssuance(cfg, p.Store, p.Workspaces, p.Signer, p.Containers, res, log, opts...)
	}
	if err == nil {
		d.Health, err = credential.NewHealthMonitor(cfg, p.Store, p.Health, p.Scheduler, p.Prober, log, opts...)
	}
	if err == nil {
		d.Runner, err = credential.NewRunner(d.Jobs, d.Health, log)
	}
	if err == nil {
		d.Reconciler, err = credential.NewReconciler(cfg, p.Store, p.Index, p.Scheduler, p.Poison, log, opts...)
	}
	if err == nil {
		d.WorkloadIdentities, err = credential.NewWorkloadIdentities(cfg, p.WorkloadIdentities, log, opts...)
	}
	if err != nil {
		t.Fatalf("wire the domain: %v", err)
	}
	return &d
}
