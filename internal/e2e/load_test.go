package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// BenchmarkSPPollThroughput measures how many service principal polls one standalone
// worker sustains with 200 credentials polling at once (none of them ever installed, so
// every poll is a full attempt: a token request refused with AADSTS700016, a row update
// and a re-enqueue). With a 1 s interval the ceiling is 200 polls/s; falling short of it
// means the worker (or the storage behind it) is the limit.
//
//	make test PKGS=./internal/e2e/ GOTEST_FLAGS='-run ^$ -bench SPPollThroughput -benchtime 1x'
func BenchmarkSPPollThroughput(b *testing.B) {
	const credentials = 200
	const window = 10 * time.Second
	env := testenv.Azurite(b)
	si := startStandIn(b, env, time.Second)
	s := defaultSettings()
	s.spWindow = 10 * time.Minute
	// The credentials are one organization's, created at once.
	s.maxCredentials, s.createRate = credentials, fmt.Sprintf("%d/1m", credentials)
	h := startHandler(b, env, si, s)
	api := h.api(b)
	ctx := context.Background()
	ids := make([]string, credentials)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := api.Create(ctx, fmt.Sprintf("load-%d", i), "az://custacct1/loadbox")
			if err == nil {
				_, err = api.SubmitTenant(ctx, c.ID, tenantA)
			}
			if err != nil {
				b.Error(err)
				return
			}
			ids[i] = c.ID
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	attempts := func() int {
		total := 0
		for _, id := range ids {
			c, err := api.Get(ctx, id)
			if err != nil || c.Progress == nil {
				b.Fatalf("read %s: %v", id, err)
			}
			total += c.Progress.Attempts
		}
		return total
	}
	time.Sleep(3 * time.Second) // every chain running
	b.ResetTimer()
	for range b.N {
		before, start := attempts(), time.Now()
		time.Sleep(window)
		after, elapsed := attempts(), time.Since(start)
		b.ReportMetric(float64(after-before)/elapsed.Seconds(), "polls/s")
	}
	b.StopTimer()
	var c walkthrough.Credential
	if c, _ = api.Get(ctx, ids[0]); c.State != "sp_pending" {
		b.Fatalf("state %s", c.State)
	}
}
