package credential_test

import (
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// fixture is the domain of one instance on in-memory ports, and an Onboarder of the
// organization "org" on it.
type fixture struct {
	*credentialtest.Onboarder
	t    *testing.T
	fake *credentialtest.Fakes
}

// newFixture wires the domain on fresh fakes with cfg, whose poll intervals are a second
// unless it sets them. Its scheduler leaves out the windows' backstops (their own tests
// put the fake scheduler back); with, when not nil, changes the ports first.
func newFixture(t *testing.T, cfg credential.Config, with func(*credentialtest.Ports, *credentialtest.Fakes)) *fixture {
	t.Helper()
	fake := credentialtest.NewFakes()
	if cfg.SPPollInterval == 0 {
		cfg.SPPollInterval = time.Second
	}
	if cfg.AccessProbeInterval == 0 {
		cfg.AccessProbeInterval = time.Second
	}
	p := fake.Ports()
	p.Scheduler = credentialtest.WithoutBackstops(fake.Scheduler)
	if with != nil {
		with(&p, fake)
	}
	d := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: p, Now: fake.Clock.Now})
	return &fixture{t: t, fake: fake, Onboarder: &credentialtest.Onboarder{T: t, Org: "org", Domain: d,
		Store: fake.Store, Queue: fake.Scheduler, Finder: fake.Finder, Prober: fake.Prober, Now: fake.Clock.Now}}
}

// jobs takes every queued job of kind.
func (f *fixture) jobs(kind credential.JobKind) []credential.Job { return f.fake.Scheduler.Take(kind) }

// provider is an Entra error of kind with code.
var provider = credentialtest.Provider

// report is a probe report of the four checks.
var report = credentialtest.Report
