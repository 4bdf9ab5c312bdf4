package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/loadtest"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// TestOnboardingLoad runs scenario 1 of `make load` (many onboardings at once) at a small
// count on the real binaries, with the handler's table and queue traffic counted by a
// fault proxy at zero rates, so the code path behind the figures of docs/PERFORMANCE.md
// keeps working. It checks what the run reports, not how fast it was.
func TestOnboardingLoad(t *testing.T) {
	const n = 20
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)

	// The handler reaches its own storage (tables, queues) through the counting proxy.
	p, err := faultproxy.New(faultproxy.Config{Targets: map[faultproxy.Service]string{
		faultproxy.ServiceTable: env.TableEndpoint, faultproxy.ServiceQueue: env.QueueEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(env.CertFile, filepath.Join(filepath.Dir(env.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	counted := env
	for _, s := range []struct {
		svc faultproxy.Service
		url *string
	}{{faultproxy.ServiceTable, &counted.TableEndpoint}, {faultproxy.ServiceQueue, &counted.QueueEndpoint}} {
		srv := httptest.NewUnstartedServer(p.Handler(s.svc))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		*s.url = srv.URL
	}
	// The n credentials are one organization's, all created at once: as `make load` does,
	// the limits allow exactly that.
	s := defaultSettings()
	s.maxCredentials, s.createRate = n, fmt.Sprintf("%d/1m", n)
	h := startHandler(t, counted, si, s)
	api := h.api(t)
	pid := h.proc.Pid()

	ctx := context.Background()
	stats := counted.TableEndpoint + "/_faultproxy/stats"
	guarded, err := loadtest.GuardedClient(nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	storageBefore, err := loadtest.StorageStats(ctx, guarded, stats)
	if err != nil {
		t.Fatal(err)
	}
	before, err := loadtest.ReadProcessUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadtest.RunOnboarding(ctx, loadtest.OnboardingConfig{
		APIURL: h.url, Org: api.Org, Token: api.Token, ControlURL: si.url + "/control",
		Credentials: n, Concurrency: 8, TenantID: tenantA, SubscriptionID: subscriptionID,
		ResourceGroup: resourceGroup, Account: "custacct1", Poll: 250 * time.Millisecond, Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := loadtest.ReadProcessUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	storageAfter, err := loadtest.StorageStats(ctx, guarded, stats)
	if err != nil {
		t.Fatal(err)
	}
	storage := storageAfter.Sub(storageBefore)
	t.Logf("%d onboardings: all verified after %s; create->verified %s; tenant->sp_verified %s; storage->verified %s",
		n, res.AllVerified.Round(time.Millisecond), res.ToVerified, res.SPFound, res.Probe)
	t.Logf("handler CPU %s, peak RSS %d MiB; storage transactions per onboarding: table %.1f, queue %.1f",
		after.CPU-before.CPU, after.PeakRSS>>20,
		float64(storage.Services[faultproxy.ServiceTable].Requests)/n, float64(storage.Services[faultproxy.ServiceQueue].Requests)/n)

	if res.Verified != n || res.Failed != 0 || res.Errors != 0 || len(res.VerifiedIDs) != n {
		t.Fatalf("verified %d, failed %d, errors %d (%s), final states %v", res.Verified, res.Failed, res.Errors, res.ErrorSample, res.FinalStates)
	}
	for name, d := range map[string]loadtest.Durations{"create->verified": res.ToVerified, "tenant->sp_verified": res.SPFound, "storage->verified": res.Probe} {
		if d.N != n || d.P50 <= 0 || d.P50 > d.P99 || d.P99 > d.Max {
			t.Errorf("%s: %+v", name, d)
		}
	}
	if res.AllVerified < res.ToVerified.Max-time.Second || res.Submitted <= 0 {
		t.Errorf("all verified after %s, slowest onboarding %s, submitted after %s", res.AllVerified, res.ToVerified.Max, res.Submitted)
	}
	if after.CPU <= before.CPU || after.PeakRSS <= 0 || after.PeakRSS < after.RSS {
		t.Errorf("handler usage before %+v, after %+v", before, after)
	}
	// Every onboarding writes its row, events and jobs: the proxy saw it all.
	for _, svc := range []faultproxy.Service{faultproxy.ServiceTable, faultproxy.ServiceQueue} {
		st := storage.Services[svc]
		if st.Requests < n || st.Forwarded != st.Requests || st.Faults.Total() != 0 || len(st.Operations) == 0 {
			t.Errorf("%s: %+v", svc, st)
		}
	}
}
