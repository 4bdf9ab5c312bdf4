package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// TestRunChaosFlags: -chaos-* turn random faults on at start, visible under /control/chaos.
func TestRunChaosFlags(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	addr, _, stop := serve(t,
		"-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID,
		"-chaos-probability", "0.25", "-chaos-statuses", "503, 429", "-chaos-retry-after", "3", "-chaos-seed", "9",
	)
	defer stop()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + addr + "/control/chaos")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Chaos struct {
			Probability float64 `json:"probability"`
			Statuses    []int   `json:"statuses"`
			RetryAfter  int     `json:"retry_after"`
			Seed        uint64  `json:"seed"`
		} `json:"chaos"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	c := st.Chaos
	if c.Probability != 0.25 || len(c.Statuses) != 2 || c.Statuses[0] != 503 || c.Statuses[1] != 429 || c.RetryAfter != 3 || c.Seed != 9 {
		t.Errorf("chaos = %+v", c)
	}
}

func TestRunRejectsBadChaosFlags(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	base := []string{"-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-home-tenant", homeTenant, "-mi-client-id", miClientID, "-mi-object-id", miObjectID}
	for name, extra := range map[string][]string{
		"probability":  {"-chaos-probability", "2"},
		"status":       {"-chaos-probability", "0.1", "-chaos-statuses", "404"},
		"not a number": {"-chaos-statuses", "busy"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(context.Background(), append(append([]string{}, base...), extra...), slog.New(slog.DiscardHandler), nil); err == nil {
				t.Fatal("run succeeded")
			}
		})
	}
}
