package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// TestRunProxiesAzurite: the command serves the table and queue listeners asked for, in
// front of the test Azurite, with the rates of its flags.
func TestRunProxiesAzurite(t *testing.T) {
	env := testenv.Azurite(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan map[faultproxy.Service]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-cert", env.CertFile, "-key", filepath.Join(filepath.Dir(env.CertFile), "key.pem"),
			"-table-addr", "127.0.0.1:0", "-queue-addr", "127.0.0.1:0",
			"-azurite-table", env.TableEndpoint, "-azurite-queue", env.QueueEndpoint, "-busy", "1", "-seed", "5"},
			slog.New(slog.DiscardHandler), func(a map[faultproxy.Service]string) { addrc <- a })
	}()
	var addrs map[faultproxy.Service]string
	select {
	case addrs = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	if _, ok := addrs[faultproxy.ServiceBlob]; ok || len(addrs) != 2 {
		t.Errorf("listeners %v, want table and queue only", addrs)
	}
	resp, err := http.Get("https://" + addrs[faultproxy.ServiceTable] + "/" + testenv.DevAccount + "/Tables")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-ms-error-code") != "ServerBusy" {
		t.Errorf("at -busy 1: %d %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}
	resp, err = http.Post("https://"+addrs[faultproxy.ServiceQueue]+"/_faultproxy/config", "application/json", strings.NewReader(`{"rates":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Unauthenticated, so Azurite refuses it; what matters is that Azurite answered.
	resp, err = http.Get("https://" + addrs[faultproxy.ServiceQueue] + "/" + testenv.DevAccount + "?comp=list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.Errorf("after the rates were cleared: %d", resp.StatusCode)
	}
	resp, err = http.Get("https://" + addrs[faultproxy.ServiceQueue] + "/_faultproxy/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st faultproxy.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Services[faultproxy.ServiceTable].Faults.Busy != 1 || st.Services[faultproxy.ServiceQueue].Forwarded != 1 {
		t.Errorf("stats = %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after stop: %v", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	env := testenv.Azurite(t)
	key := filepath.Join(filepath.Dir(env.CertFile), "key.pem")
	for name, args := range map[string][]string{
		"no certificate": {"-azurite-table", env.TableEndpoint},
		"no target":      {"-cert", env.CertFile, "-key", key},
		"bad rates":      {"-cert", env.CertFile, "-key", key, "-azurite-table", env.TableEndpoint, "-busy", "0.7", "-lost", "0.7"},
		"stray argument": {"-cert", env.CertFile, "-key", key, "-azurite-table", env.TableEndpoint, "extra"},
	} {
		t.Run(name, func(t *testing.T) {
			args = append(args, "-table-addr", "127.0.0.1:0")
			if err := run(context.Background(), args, slog.New(slog.DiscardHandler), nil); err == nil {
				t.Fatal("run succeeded")
			}
		})
	}
}
