package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// The lost-message soak's faults and windows.
const (
	// lostDropRate is the chance that an enqueue to a job queue is answered as done and
	// thrown away: the message is lost outright, not delayed.
	lostDropRate = 0.15
	// lostOutage is how long a poisoned onboarding's partition answers ServerBusy: well
	// beyond five deliveries of a job that fails on reading it (each about 6 s of the
	// storage client's retries, 5 s apart: 50 s, more on a loaded machine), so the job is
	// poisoned before the outage ends, and well inside the window, so the window still
	// ends within itself and two reconciler periods.
	lostOutage   = 90 * time.Second
	lostSPWindow = 2 * time.Minute
	lostWindow   = time.Minute
)

// TestSoakLostMessages: onboardings through two handler instances while the queue loses
// job messages outright (an enqueue answered as done and thrown away, at lostDropRate) and,
// for one onboarding in ten, the partition of its organization is out for lostOutage just
// after its tenant submit, so its poll job fails on every delivery and is poisoned (that
// onboarding's messages are kept from the drops, so there is a poll job to poison). The
// reconciler must make up for all of it: every onboarding reaches its right end state,
// with its events, within its window plus two reconciler periods (and the closing
// attempt's few seconds); every poisoned job is handled by the reconciler with an error
// line, and its failure (Azure Storage, with the request id) shown on its credential
// unless its window moved on first.
func TestSoakLostMessages(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	n := soakCount(t, "onboardings", 10, 50)
	proxy, proxied := startFaultProxy(t, env)
	si := startStandIn(t, proxied, 2*time.Second)
	s := defaultSettings()
	s.instances, s.reconcile = 2, soakReconcile
	s.spWindow, s.probeWindow, s.grace = lostSPWindow, lostWindow, 8*time.Second
	s.createGuard = 20 * time.Second
	s.maxCredentials, s.maxWorkspaces, s.createRate = 50, 1000, "30/1m"
	h := startHandler(t, proxied, si, s)

	start := time.Now()
	before := proxy.Stats()
	if err := proxy.SetRates(faultproxy.Rates{Drop: lostDropRate}, faultproxy.ServiceQueue); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var retries atomic.Int64
	runs := make([]*soakRun, n)
	var outages []*soakRun
	var wg sync.WaitGroup
	for i := range runs {
		api := h.apiOn(t, i)
		api.HTTP = &http.Client{Timeout: 30 * time.Second}
		r := &soakRun{i: i, scenario: scenarioOf(i), p: &patient{api: api, retries: &retries}}
		if i%10 == 6 {
			// Poisoned: the partition goes out right after the submit, the service principal
			// arrives meanwhile, and the poll finds it once the reconciler takes it up.
			org := api.Org
			// Its jobs' messages are never dropped: a dropped first poll would leave
			// nothing to poison, and the outage would prove nothing.
			if err := proxy.KeepMessages(`"org_id":"` + org + `"`); err != nil {
				t.Fatal(err)
			}
			r.installLate = true
			r.onTenant = func() {
				if err := proxy.Outage(faultproxy.ServiceTable, lostOutage, "PartitionKey='"+org+"'", `"PartitionKey":"`+org+`"`,
					"PartitionKey eq '"+org+"'"); err != nil {
					t.Error(err)
				}
			}
			outages = append(outages, r)
		}
		runs[i] = r
		wg.Go(func() { r.err = r.run(ctx, si, lostSPWindow, lostWindow) })
	}
	wg.Wait()
	onboarded := time.Since(start)
	if err := proxy.SetRates(faultproxy.Rates{}); err != nil {
		t.Fatal(err)
	}
	storage := proxy.Stats().Sub(before)

	counts := map[scenario]int{}
	failed := 0
	for _, r := range runs {
		counts[r.scenario]++
		if msg := r.check(ctx); msg != "" {
			failed++
			t.Errorf("onboarding %d (%s, credential %s): %s", r.i, r.scenario, r.id, msg)
		}
		for _, w := range r.windows {
			if beyond := w.elapsed - w.window; beyond > 2*soakReconcile+5*time.Second {
				t.Errorf("onboarding %d: its %s window ended %v after it began, %v past its window of %v: more than two reconciler periods (%v) and the closing attempt",
					r.i, w.kind, w.elapsed.Round(100*time.Millisecond), beyond.Round(100*time.Millisecond), w.window, 2*soakReconcile)
			}
		}
	}
	q, tb := storage.Services[faultproxy.ServiceQueue], storage.Services[faultproxy.ServiceTable]
	t.Logf("%d onboardings %v in %s (%d failed), %d of them through an outage of %v; wizard retries %d",
		n, counts, onboarded.Round(time.Second), failed, len(outages), lostOutage, retries.Load())
	t.Logf("queue: %d enqueues, %d dropped outright; table: %d requests, %d answered by the outages", q.Operations["POST messages"],
		q.Faults.Dropped, tb.Requests, tb.Faults.Outage)
	reportWindows(t, runs)
	f := reportInstances(t, h)
	t.Logf("all instances: %s", f)
	if q.Faults.Dropped == 0 {
		t.Error("no message was dropped: the soak proved nothing")
	}
	if f.restarted == 0 {
		t.Error("the reconciler restarted no window")
	}
	if f.poisoned < len(outages) || f.poisonHandled < len(outages) || f.lastDeliveryFailed < len(outages) {
		t.Errorf("%d messages poisoned, %d handled by the reconciler, %d last deliveries failed; want at least one per outage (%d)",
			f.poisoned, f.poisonHandled, f.lastDeliveryFailed, len(outages))
	}
	// Each outage's poisoned job is taken up by the reconciler: its failure is shown on the
	// credential, unless a job of the window got through once the outage ended and moved
	// it on first (a backstop's or a redelivery's), when the failure is history and the
	// credential shows the window's progress instead.
	handled := poisonHandling(t, h.logs())
	shown, history, unpoisoned := 0, 0, 0
	for _, r := range outages {
		p := handled[r.id]
		switch {
		case p == nil || p.pollsPoisoned == 0:
			// Its messages are kept from the drops, so its poll's five deliveries
			// outlasted the outage (a slow machine) and a later job got through first.
			unpoisoned++
		case len(p.shown) > 0 || p.unnoted > 0:
			shown++
		case p.history > 0:
			history++
		default:
			t.Errorf("onboarding %d (credential %s): its poisoned poll job was neither shown nor found moved on by the reconciler", r.i, r.id)
		}
		for _, msg := range p.shown {
			if !strings.HasPrefix(msg, credential.UnexpectedStorageMessage+" (request id ") {
				t.Errorf("onboarding %d: shown failure %q: want Azure Storage's unexpected error with the request id", r.i, msg)
			}
		}
	}
	t.Logf("onboardings through an outage: %d with the poisoned poll's failure shown on the credential, %d whose window a later job moved on first, %d whose poll was never poisoned",
		shown, history, unpoisoned)
	if shown+history == 0 {
		t.Error("no outage poisoned a poll job: the soak proved nothing about poisoned messages")
	}
	seen := 0
	for _, r := range outages {
		for msg := range r.lastErrors {
			if strings.HasPrefix(msg, credential.UnexpectedStorageMessage) {
				seen++
				break
			}
		}
	}
	t.Logf("the wizard itself saw the failure on %d of %d poisoned onboardings (it is shown until the next attempt, about a second)", seen, len(outages))
}

// poisonOutcome is what the reconciler did with one credential's poisoned jobs.
type poisonOutcome struct {
	shown   []string // the last_error it showed, from what the job's last delivery noted
	unnoted int      // failures shown without a note (the job's message id as the trace)
	history int      // poisoned jobs whose window had moved on or closed
	// pollsPoisoned counts the credential's SP poll messages the reconciler took from a
	// poison queue (each time it read one).
	pollsPoisoned int
}

// poisonHandling reads the reconciler's lines about poisoned jobs from the handlers' logs,
// by credential.
func poisonHandling(t *testing.T, paths []string) map[string]*poisonOutcome {
	t.Helper()
	out := map[string]*poisonOutcome{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rec struct {
				Msg        string `json:"msg"`
				Credential string `json:"credential"`
				LastError  string `json:"last_error"`
				Noted      bool   `json:"noted"`
				Kind       string `json:"kind"`
			}
			if json.Unmarshal(line, &rec) != nil || rec.Credential == "" {
				continue
			}
			o := out[rec.Credential]
			if o == nil {
				o = &poisonOutcome{}
				out[rec.Credential] = o
			}
			switch {
			case strings.HasPrefix(rec.Msg, "reconciler: a poisoned job's failure shown") && rec.Noted:
				o.shown = append(o.shown, rec.LastError)
			case strings.HasPrefix(rec.Msg, "reconciler: a poisoned job's failure shown"):
				o.unnoted++
			case strings.HasPrefix(rec.Msg, "reconciler: a poisoned job's window moved on or closed"):
				o.history++
			case strings.HasPrefix(rec.Msg, "reconciler: a job failed on every delivery") && rec.Kind == string(credential.JobSPPoll):
				o.pollsPoisoned++
			}
		}
	}
	return out
}
