package tlsserve

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert is httptest's self-signed certificate for 127.0.0.1, and its PEM file.
func testCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	cert := srv.TLS.Certificates[0]
	file := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, file
}

// TestServeAndStop: every listener serves its handler over TLS, trusted through
// AzuriteTransport, and all of them stop when the context ends.
func TestServeAndStop(t *testing.T) {
	cert, certFile := testCert(t)
	transport, err := AzuriteTransport(certFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	listeners := []Listener{
		{Name: "one", Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "one") })},
		{Name: "two", Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "two") })},
	}
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, slog.New(slog.DiscardHandler), cert, listeners, func(a []string) { ready <- a })
	}()
	addrs := <-ready
	for i, want := range []string{"one", "two"} {
		resp, err := client.Get("https://" + addrs[i] + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("listener %d answered %q, want %q", i, body, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after the context ended: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if _, err := net.DialTimeout("tcp", addrs[0], time.Second); err == nil {
		t.Error("still listening after the stop")
	}
}

// TestServePortTaken: a taken address fails the start, and no listener is left open.
func TestServePortTaken(t *testing.T) {
	cert, _ := testCert(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	err = Serve(context.Background(), slog.New(slog.DiscardHandler), cert, []Listener{
		{Name: "first", Addr: freeAddr, Handler: http.NotFoundHandler()},
		{Name: "second", Addr: taken.Addr().String(), Handler: http.NotFoundHandler()},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "listen (second)") {
		t.Fatalf("Serve = %v, want the second listener's error", err)
	}
	again, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the first listener was left open: %v", err)
	}
	again.Close()
}

func TestAzuriteTransportRefusesAFileWithoutCertificate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(file, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := AzuriteTransport(file); err == nil {
		t.Fatal("AzuriteTransport accepted a file without a certificate")
	}
	if _, err := AzuriteTransport(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Fatal("AzuriteTransport accepted a missing file")
	}
}
