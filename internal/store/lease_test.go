package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// TestLease: one holder at a time; the holder renews; another takes it once it expired;
// of sixteen instances trying at once exactly one wins.
func TestLease(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	take := func(holder string, now time.Time) bool {
		t.Helper()
		ok, err := s.TryLease(ctx, "reconcile", holder, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("a", t0) {
		t.Fatal("a did not get a lease nobody held")
	}
	if take("b", t0.Add(30*time.Second)) {
		t.Fatal("b took a's lease before it expired")
	}
	if !take("a", t0.Add(50*time.Second)) {
		t.Fatal("a could not renew its lease")
	}
	if take("b", t0.Add(100*time.Second)) {
		t.Fatal("b took the lease a renewed")
	}
	if !take("b", t0.Add(111*time.Second)) {
		t.Fatal("b did not get the lease after it expired")
	}
	if take("a", t0.Add(112*time.Second)) {
		t.Fatal("a took b's lease")
	}
	if ok, err := s.TryLease(ctx, "health-sweep", "a", t0.Add(112*time.Second), time.Minute); err != nil || !ok {
		t.Fatalf("another lease: %v %v", ok, err)
	}

	// Racers, on a fresh lease and on an expired one.
	for _, at := range []time.Time{t0, t0.Add(10 * time.Minute)} {
		var wins sync.Map
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				ok, err := s.TryLease(ctx, "race", string(rune('a'+i)), at, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Store(i, true)
				}
			})
		}
		wg.Wait()
		n := 0
		wins.Range(func(any, any) bool { n++; return true })
		if n != 1 {
			t.Errorf("at %v: %d of 16 racers got the lease, want 1", at, n)
		}
	}
}

// TestStoreErrorsNameTheService: a Table call that stays unavailable fails with the
// domain's ProviderError of Azure Storage, carrying the service's request id, so that a
// job failing for good can say what failed.
func TestStoreErrorsNameTheService(t *testing.T) {
	s, p := newProxiedStore(t)
	if err := p.SetRates(faultproxy.Rates{Busy: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(context.Background(), "org", "c1")
	var pe *credential.ProviderError
	if !errors.Is(err, credential.ErrUnavailable) || !errors.As(err, &pe) || pe.Service != credential.ServiceStorage ||
		pe.Code != "ServerBusy" || pe.Status != 503 || pe.RequestID == "" {
		t.Fatalf("error %v (%+v), want Azure Storage's ServerBusy with its request id", err, pe)
	}
}
