package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ReadyTimeout bounds the wait for a process to accept connections: Node takes seconds to
// load Azurite, and much longer on a busy machine.
const ReadyTimeout = 90 * time.Second

// WaitPorts waits until every port accepts connections. It fails, with the end of the
// process's log, when p ends first or ReadyTimeout passes.
func WaitPorts(ctx context.Context, p *Process, ports ...int) error {
	return waitFor(ctx, p, func() bool {
		for _, port := range ports {
			if !portOpen(port) {
				return false
			}
		}
		return true
	})
}

// WaitHTTP waits until url answers with any status, as WaitPorts does.
func WaitHTTP(ctx context.Context, p *Process, client *http.Client, url string) error {
	return waitFor(ctx, p, func() bool {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

func waitFor(ctx context.Context, p *Process, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	for !ready() {
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited (%s) before it was ready%s", p.Name, ExitError(p.err), p.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("%s was not ready after %s%s", p.Name, ReadyTimeout, p.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// LogTail is the last n lines of the process's log, indented under a heading, or "" when
// it has no log file or an empty one.
func (p *Process) LogTail(n int) string {
	if p.Log == "" {
		return ""
	}
	b, err := os.ReadFile(p.Log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return fmt.Sprintf("\n--- last lines of %s ---\n    %s\n---", p.Log, strings.Join(lines, "\n    "))
}

// Client is an HTTP client that trusts the local certificate besides the system roots.
func Client(certFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: 30 * time.Second}, nil
}
