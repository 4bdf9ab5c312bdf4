package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"testing"

	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// Helpers for onboardings that go on while the handler or its storage is down: the
// wizard's calls are retried the way a browser's would be, and what failed is counted.

// mayRecover says whether an API call may succeed when tried again: no answer at all
// (the handler is down or restarting) or a 5xx.
func mayRecover(err error) bool {
	var apiErr *walkthrough.Error
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500
	}
	return err != nil
}

// outageStats counts what the wizard met while something was down.
type outageStats struct {
	unanswered  atomic.Int64 // no HTTP answer
	unavailable atomic.Int64 // 503
	other5xx    atomic.Int64
}

func (s *outageStats) record(err error) {
	var apiErr *walkthrough.Error
	switch {
	case !errors.As(err, &apiErr):
		s.unanswered.Add(1)
	case apiErr.Status == 503:
		s.unavailable.Add(1)
	default:
		s.other5xx.Add(1)
	}
}

func (s *outageStats) String() string {
	return fmt.Sprintf("%d calls unanswered, %d answered 503, %d other 5xx", s.unanswered.Load(), s.unavailable.Load(), s.other5xx.Load())
}

// retryThrough calls f until it succeeds or fails for good, or ctx ends.
func retryThrough(ctx context.Context, stats *outageStats, f func() error) error {
	for {
		err := f()
		if !mayRecover(err) {
			return err
		}
		stats.record(err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitUntil polls the credential, through outages, until done says so.
func waitUntil(ctx context.Context, api *walkthrough.API, id string, stats *outageStats, done func(walkthrough.Credential) bool) (walkthrough.Credential, error) {
	for {
		var c walkthrough.Credential
		err := retryThrough(ctx, stats, func() (err error) { c, err = api.Get(ctx, id); return err })
		if err != nil {
			return c, err
		}
		if done(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("credential %s still %s/%s (%s): %w", id, c.State, c.Status(), c.LastError, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// attempted is a waitUntil condition: the current window has made n attempts.
func attempted(n int) func(walkthrough.Credential) bool {
	return func(c walkthrough.Credential) bool { return c.Progress != nil && c.Progress.Attempts >= n }
}

// submitStorageThrough submits the storage form until it lands. A submit whose answer was lost
// is sent again, as a wizard does: that starts one more window, never a double transition.
func (o *onboarding) submitStorageThrough(ctx context.Context, stats *outageStats) error {
	form := walkthrough.StorageForm{SubscriptionID: subscriptionID, ResourceGroup: resourceGroup, StorageAccount: o.account, ContainerName: o.container}
	err := retryThrough(ctx, stats, func() error {
		_, err := o.api.SubmitStorage(ctx, o.cred.ID, form)
		return err
	})
	var apiErr *walkthrough.Error
	if errors.As(err, &apiErr) && apiErr.Status == 409 {
		// An earlier submit landed and its probe already finished.
		return nil
	}
	return err
}

// checkTransitions checks a credential's events: one chain (each from is the previous
// to), no transition of a window recorded twice, and the onboarding's steps in order,
// with only windows restarted by a resubmit in between.
func checkTransitions(evs []walkthrough.Event) error {
	seen := map[string]bool{}
	prev := ""
	var steps []string
	for _, e := range evs {
		key := fmt.Sprintf("%s>%s@%d", e.From, e.To, e.Generation)
		if seen[key] {
			return fmt.Errorf("transition %s recorded twice", key)
		}
		seen[key] = true
		if e.From != prev {
			return fmt.Errorf("events do not chain at %s (previous state %q)", key, prev)
		}
		prev = e.To
		if e.From == e.To && (e.Cause == "submit_storage" || e.Cause == "submit_tenant") {
			continue // a resubmit: a new window
		}
		steps = append(steps, e.From+">"+e.To+":"+e.Cause)
	}
	want := ">draft:created draft>sp_pending:submit_tenant sp_pending>sp_verified:sp_found " +
		"sp_verified>access_pending:submit_storage access_pending>verified:access_confirmed"
	if got := strings.Join(steps, " "); got != want {
		return fmt.Errorf("steps %q, want %q", got, want)
	}
	return nil
}

// jobFigures counts, over handler logs, what the background work did: jobs completed (and
// those on a redelivery, dequeue count above 1), follow-ups scheduled again by a
// redelivery, stale or replayed jobs dropped (duplicates), writes that lost a race to
// another writer (conflicts), jobs whose last delivery failed, messages moved to a poison
// queue, and the reconciler's runs, windows restarted and poisoned messages handled.
type jobFigures struct {
	done, redelivered, rescheduled, dropped, conflicts int
	lastDeliveryFailed, poisoned                       int
	reconciles, restarted, poisonHandled, failureShown int
	leaseRefused                                       int
	// attempts are the window attempts begun, remembered those begun on the row the
	// instance remembered instead of a read, and stale the remembered rows (a job's or a
	// submit's) that did not hold and were read again.
	attempts, remembered, stale int
	windowGapMaxMS              int64
	slotWaitMaxMS               int64
	peakInFlight                int64
	// reconciledGapsMS are the gaps before the attempts the reconciler's jobs made: how
	// long a window whose chain stopped went without an attempt.
	reconciledGapsMS []int64
}

func (f jobFigures) String() string {
	gaps := slices.Clone(f.reconciledGapsMS)
	slices.Sort(gaps)
	reconciled := "none"
	if n := len(gaps); n > 0 {
		reconciled = fmt.Sprintf("%d, gap median %d ms, max %d ms", n, gaps[n/2], gaps[n-1])
	}
	return fmt.Sprintf("%d jobs done (%d on a redelivery), %d duplicates dropped, %d conflicts lost, %d follow-ups rescheduled by a redelivery, "+
		"%d last deliveries failed, %d poisoned; reconciler: %d runs (%d periods left to another instance), %d windows restarted, "+
		"attempts made by its jobs %s, %d poisoned messages handled (%d failures shown); longest gap between a window's attempts %d ms; "+
		"peak slots in use %d, longest wait for a slot %d ms; window attempts %d (%d on a remembered row), remembered rows that were stale %d",
		f.done, f.redelivered, f.dropped, f.conflicts, f.rescheduled, f.lastDeliveryFailed, f.poisoned, f.reconciles, f.leaseRefused,
		f.restarted, reconciled, f.poisonHandled, f.failureShown, f.windowGapMaxMS, f.peakInFlight, f.slotWaitMaxMS,
		f.attempts, f.remembered, f.stale)
}

func countJobs(paths []string) (jobFigures, error) {
	var f jobFigures
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return f, err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rec struct {
				Msg          string `json:"msg"`
				DequeueCount int    `json:"dequeue_count"`
				GapMS        int64  `json:"gap_ms"`
				Reconciled   bool   `json:"reconciled"`
				SlotWaitMS   int64  `json:"slot_wait_ms_max"`
				PeakInFlight int64  `json:"peak_in_flight"`
				Remembered   bool   `json:"remembered_row"`
			}
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch {
			case rec.Msg == "queue job done":
				f.done++
				if rec.DequeueCount > 1 {
					f.redelivered++
				}
			case strings.HasPrefix(rec.Msg, "redelivered job: scheduling"):
				f.rescheduled++
			case rec.Msg == "stale job dropped":
				f.dropped++
			case strings.HasPrefix(rec.Msg, "job lost a race"):
				f.conflicts++
			case strings.HasPrefix(rec.Msg, "job failed on its last delivery"):
				f.lastDeliveryFailed++
			case rec.Msg == "queue message poisoned":
				f.poisoned++
			case rec.Msg == "reconciled":
				f.reconciles++
			case strings.HasPrefix(rec.Msg, "another instance holds the timer's lease"):
				f.leaseRefused++
			case rec.Msg == "reconciler: window restarted":
				f.restarted++
			case strings.HasPrefix(rec.Msg, "reconciler: a job failed on every delivery"):
				f.poisonHandled++
			case strings.HasPrefix(rec.Msg, "reconciler: a poisoned job's failure shown"):
				f.failureShown++
			case strings.HasPrefix(rec.Msg, "a remembered row did not hold"):
				f.stale++
			case rec.Msg == "window attempt":
				f.attempts++
				if rec.Remembered {
					f.remembered++
				}
				f.windowGapMaxMS = max(f.windowGapMaxMS, rec.GapMS)
				if rec.Reconciled {
					f.reconciledGapsMS = append(f.reconciledGapsMS, rec.GapMS)
				}
			case rec.Msg == "worker load":
				f.slotWaitMaxMS = max(f.slotWaitMaxMS, rec.SlotWaitMS)
				f.peakInFlight = max(f.peakInFlight, rec.PeakInFlight)
			}
		}
	}
	return f, nil
}

// reportInstances logs what each instance of h did, and returns the figures of all of them.
func reportInstances(t *testing.T, h *handler) jobFigures {
	t.Helper()
	var all jobFigures
	for i, in := range h.instances {
		f, err := countJobs(in.logs)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("instance %d (%d runs): %s", i, len(in.logs), f)
		all.done += f.done
		all.redelivered += f.redelivered
		all.rescheduled += f.rescheduled
		all.dropped += f.dropped
		all.conflicts += f.conflicts
		all.lastDeliveryFailed += f.lastDeliveryFailed
		all.poisoned += f.poisoned
		all.reconciles += f.reconciles
		all.leaseRefused += f.leaseRefused
		all.restarted += f.restarted
		all.poisonHandled += f.poisonHandled
		all.failureShown += f.failureShown
		all.attempts += f.attempts
		all.remembered += f.remembered
		all.stale += f.stale
		all.windowGapMaxMS = max(all.windowGapMaxMS, f.windowGapMaxMS)
		all.reconciledGapsMS = append(all.reconciledGapsMS, f.reconciledGapsMS...)
		all.slotWaitMaxMS = max(all.slotWaitMaxMS, f.slotWaitMaxMS)
		all.peakInFlight = max(all.peakInFlight, f.peakInFlight)
	}
	return all
}

// countLines counts the log lines of paths whose message is msg.
func countLines(paths []string, msg string) (int, error) {
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return n, err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rec struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == msg {
				n++
			}
		}
	}
	return n, nil
}
