package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// errorCode is the code of an API error answer ("" when err is none).
func errorCode(err error) (status int, code string) {
	var e *walkthrough.Error
	if !errors.As(err, &e) {
		return 0, ""
	}
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(e.Body), &body)
	return e.Status, body.Error.Code
}

// TestLimitsThroughBinary: the limit settings reach the running handler. 16 creates race
// for an organization's last credential place through the real binary and stand-in:
// exactly one wins, the others get 409 quota_exceeded and leave no app registration;
// beyond the create rate the answer is 429 with Retry-After; at the workspace limit /creds
// refuses a new workspace and serves an existing one.
func TestLimitsThroughBinary(t *testing.T) {
	const limit = 5
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	// 4 creates, 16 racers and one more: 21 tokens, then the bucket is empty for an hour.
	s.maxCredentials, s.maxWorkspaces, s.createRate = limit, 1, "21/1h"
	h := startHandler(t, env, si, s)
	api := h.api(t)
	ctx := context.Background()
	appsBefore, err := applications(ctx, si)
	if err != nil {
		t.Fatal(err)
	}
	for i := range limit - 1 {
		if _, err := api.Create(ctx, fmt.Sprintf("c%d", i), "az://custacct1/box"); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = api.Create(ctx, fmt.Sprintf("racer%d", i), "az://custacct1/box") })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			continue
		}
		if status, code := errorCode(err); status != http.StatusConflict || code != "quota_exceeded" || !strings.Contains(err.Error(), "limit of 5 credentials") {
			t.Errorf("racer %d: %v, want 409 quota_exceeded naming the limit", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d racers won, want 1", wins)
	}
	appsAfter, err := applications(ctx, si)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(appsAfter) - len(appsBefore); got != limit {
		t.Errorf("%d app registrations made, want %d", got, limit)
	}

	if _, err := api.Create(ctx, "over", "az://custacct1/box"); err == nil {
		t.Fatal("a create beyond the limit passed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/organizations/"+api.Org+"/credentials",
		strings.NewReader(`{"name":"fast","storage_type":"azure_federated","base_path":"az://custacct1/box"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	req.Header.Set("X-Activeloop-Org-Id", api.Org)
	resp, err := apiCheck.Client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("beyond the rate: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// The first call records the workspace, whether or not the managed identity's role on
	// the platform storage has propagated yet to sign its SAS; then the role arrives.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := api.Creds(ctx, "ws-first", "t1")
		if err == nil {
			break
		}
		if status, _ := errorCode(err); status != http.StatusBadGateway || time.Now().After(deadline) {
			t.Fatalf("/creds for the first workspace: %v", err)
		}
	}
	if _, err := api.Creds(ctx, "ws-second", "t1"); err == nil {
		t.Error("/creds recorded a workspace beyond the limit")
	} else if status, code := errorCode(err); status != http.StatusConflict || code != "quota_exceeded" {
		t.Errorf("/creds for a new workspace at the limit: %v", err)
	}
	if c, err := api.Creds(ctx, "ws-first", "t2"); err != nil || c.SASToken == "" {
		t.Errorf("/creds for the existing workspace at the limit: %+v, %v", c, err)
	}
}
