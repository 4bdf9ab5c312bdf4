package profiling

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServesProfilesOnLoopback: the listener serves the index and a CPU profile (gzip, as
// pprof writes it), and stops when closed.
func TestServesProfilesOnLoopback(t *testing.T) {
	s, err := Start("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := client.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("index: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/profile?seconds=1"); code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Errorf("CPU profile: %d, %d bytes starting %x", code, len(body), body[:min(4, len(body))])
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Errorf("/ answered %d, want 404: only the profiles are served", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get("http://" + s.Addr() + "/debug/pprof/"); err == nil {
		t.Error("the listener still answers after Close")
	}
}

// TestRefusesNonLoopback: the profiles have no authentication, so only a loopback address
// is accepted (the settings refuse others too; this holds without them).
func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.com:6060", "127.0.0.1"} {
		if s, err := Start(addr, slog.New(slog.DiscardHandler)); err == nil {
			s.Close()
			t.Errorf("%s accepted", addr)
		}
	}
}
