package credential_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// TestConstructorsRefuseMissingPorts: every job type takes only the ports it uses and
// none is optional: a nil port fails the constructor, naming the port, instead of a nil
// dereference at run time.
func TestConstructorsRefuseMissingPorts(t *testing.T) {
	f := credentialtest.NewFakes()
	log := slog.New(slog.DiscardHandler)
	cfg := credential.Config{HomeTenantID: "home", ManagedIdentityObjectID: "mi"}
	res := credential.NewResolutionCache(0)
	d := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: f.Ports()})
	type build func(nilPort string) error
	pick := func(nilPort, name string, port any) any {
		if nilPort == name {
			return nil
		}
		return port
	}
	for _, tc := range []struct {
		name  string
		ports []string
		build build
	}{
		{"onboarding", []string{"store", "window index", "directory", "scheduler", "resolution cache", "log"}, func(n string) error {
			st, _ := pick(n, "store", f.Store).(credential.Store)
			ix, _ := pick(n, "window index", f.Store).(credential.WindowIndex)
			dir, _ := pick(n, "directory", f.Directory).(credential.Directory)
			sc, _ := pick(n, "scheduler", f.Scheduler).(credential.Scheduler)
			rc, _ := pick(n, "resolution cache", res).(*credential.ResolutionCache)
			lg, _ := pick(n, "log", log).(*slog.Logger)
			_, err := credential.NewOnboarding(cfg, st, ix, dir, sc, rc, lg)
			return err
		}},
		{"jobs", []string{"store", "workspace store", "window index", "directory", "scheduler", "finder", "prober", "log"}, func(n string) error {
			st, _ := pick(n, "store", f.Store).(credential.Store)
			ws, _ := pick(n, "workspace store", f.Store).(credential.WorkspaceStore)
			ix, _ := pick(n, "window index", f.Store).(credential.WindowIndex)
			dir, _ := pick(n, "directory", f.Directory).(credential.Directory)
			sc, _ := pick(n, "scheduler", f.Scheduler).(credential.Scheduler)
			fi, _ := pick(n, "finder", f.Finder).(credential.Finder)
			pr, _ := pick(n, "prober", f.Prober).(credential.Prober)
			lg, _ := pick(n, "log", log).(*slog.Logger)
			_, err := credential.NewJobs(cfg, st, ws, ix, dir, sc, fi, pr, lg)
			return err
		}},
		{"reconciler", []string{"store", "window index", "scheduler", "poison queue", "log"}, func(n string) error {
			st, _ := pick(n, "store", f.Store).(credential.Store)
			ix, _ := pick(n, "window index", f.Store).(credential.WindowIndex)
			sc, _ := pick(n, "scheduler", f.Scheduler).(credential.Scheduler)
			pq, _ := pick(n, "poison queue", f.Scheduler).(credential.PoisonQueue)
			lg, _ := pick(n, "log", log).(*slog.Logger)
			_, err := credential.NewReconciler(cfg, st, ix, sc, pq, lg)
			return err
		}},
		{"issuance", []string{"store", "workspace store", "signer", "container creator", "resolution cache", "log"}, func(n string) error {
			st, _ := pick(n, "store", f.Store).(credential.Store)
			ws, _ := pick(n, "workspace store", f.Store).(credential.WorkspaceStore)
			sg, _ := pick(n, "signer", f.Signer).(credential.Signer)
			cc, _ := pick(n, "container creator", f.Containers).(credential.ContainerCreator)
			rc, _ := pick(n, "resolution cache", res).(*credential.ResolutionCache)
			lg, _ := pick(n, "log", log).(*slog.Logger)
			_, err := credential.NewIssuance(cfg, st, ws, sg, cc, rc, lg)
			return err
		}},
		{"health monitor", []string{"store", "health store", "scheduler", "prober", "log"}, func(n string) error {
			st, _ := pick(n, "store", f.Store).(credential.Store)
			hs, _ := pick(n, "health store", f.Store).(credential.HealthStore)
			sc, _ := pick(n, "scheduler", f.Scheduler).(credential.Scheduler)
			pr, _ := pick(n, "prober", f.Prober).(credential.Prober)
			lg, _ := pick(n, "log", log).(*slog.Logger)
			_, err := credential.NewHealthMonitor(cfg, st, hs, sc, pr, lg)
			return err
		}},
		{"runner", []string{"jobs", "health monitor", "log"}, func(n string) error {
			jb, _ := pick(n, "jobs", d.Jobs).(*credential.Jobs)
			hm, _ := pick(n, "health monitor", d.Health).(*credential.HealthMonitor)
			lg, _ := pick(n, "log", log).(*slog.Logger)
			_, err := credential.NewRunner(jb, hm, lg)
			return err
		}},
	} {
		if err := tc.build(""); err != nil {
			t.Errorf("%s with every port: %v", tc.name, err)
		}
		for _, port := range tc.ports {
			err := tc.build(port)
			if err == nil || !strings.Contains(err.Error(), port) {
				t.Errorf("%s without its %s: %v, want an error naming it", tc.name, port, err)
			}
		}
	}
}

// TestConstructorsCheckTheirConfig: onboarding needs the platform's tenant and identity
// (its app registrations trust them), issuance a valid environment default.
func TestConstructorsCheckTheirConfig(t *testing.T) {
	f := credentialtest.NewFakes()
	log := slog.New(slog.DiscardHandler)
	res := credential.NewResolutionCache(0)
	if _, err := credential.NewOnboarding(credential.Config{HomeTenantID: "home"}, f.Store, f.Store, f.Directory, f.Scheduler, res, log); err == nil {
		t.Error("onboarding without the managed identity's object id")
	}
	bad := credential.Config{EnvironmentDefault: credential.EnvironmentDefault{Account: "Platform"}}
	if _, err := credential.NewIssuance(bad, f.Store, f.Store, f.Signer, f.Containers, res, log); err == nil {
		t.Error("issuance with an invalid environment default account")
	}
}
