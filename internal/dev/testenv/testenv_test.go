package testenv

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestAzuriteUp fails when the Azurite of `make test` is not there: each service accepts a
// TCP connection and a TLS handshake that verifies its certificate through SSL_CERT_FILE.
func TestAzuriteUp(t *testing.T) {
	e := Azurite(t)
	for name, endpoint := range map[string]string{"blob": e.BlobEndpoint, "queue": e.QueueEndpoint, "table": e.TableEndpoint} {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(endpoint)
			if err != nil {
				t.Fatal(err)
			}
			d := &net.Dialer{Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", u.Host)
			if err != nil {
				t.Fatalf("Azurite %s is not listening on %s: %v", name, u.Host, err)
			}
			c.Close()
			tc, err := tls.DialWithDialer(d, "tcp", u.Host, &tls.Config{ServerName: u.Hostname()})
			if err != nil {
				t.Fatalf("TLS to Azurite %s at %s (SSL_CERT_FILE=%s): %v", name, u.Host, e.CertFile, err)
			}
			tc.Close()
		})
	}
	if _, ok := e.Accounts[DevAccount]; !ok {
		t.Errorf("Accounts = %v, want %s among them", e.Accounts, DevAccount)
	}
}

// fatalRecorder stands in for a testing.TB to catch what Azurite reports through Fatalf.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestAzuriteFailsWithoutEnvironment(t *testing.T) {
	t.Setenv(envBlob, "")
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Azurite(r)
		r.msg = "Azurite returned"
	}()
	<-done
	if !strings.Contains(r.msg, "make test") || !strings.Contains(r.msg, envBlob) {
		t.Errorf("Azurite without %s: got %q, want a failure naming it and `make test`", envBlob, r.msg)
	}
}

func TestConnectionString(t *testing.T) {
	e := Env{
		BlobEndpoint:  "https://127.0.0.1:10100",
		QueueEndpoint: "https://127.0.0.1:10101",
		TableEndpoint: "https://127.0.0.1:10102",
		Accounts:      map[string]string{"custacct1": "a2V5"},
	}
	got := e.ConnectionString("custacct1")
	want := "DefaultEndpointsProtocol=https;AccountName=custacct1;AccountKey=a2V5;" +
		"BlobEndpoint=https://127.0.0.1:10100/custacct1;QueueEndpoint=https://127.0.0.1:10101/custacct1;" +
		"TableEndpoint=https://127.0.0.1:10102/custacct1;"
	if got != want {
		t.Errorf("ConnectionString:\n got %s\nwant %s", got, want)
	}
}

func TestUniqueName(t *testing.T) {
	// Valid as a table name (^[A-Za-z][A-Za-z0-9]{2,62}$), a queue and a container name.
	valid := regexp.MustCompile(`^[a-z][a-z0-9]{2,39}$`)
	seen := make(map[string]bool)
	for _, prefix := range []string{"", "store", "Test/Store_Contract", "42", "-", strings.Repeat("x", 60)} {
		for range 200 {
			n := UniqueName(t, prefix)
			if !valid.MatchString(n) {
				t.Fatalf("UniqueName(%q) = %q, not a valid table/queue name of at most 40 characters", prefix, n)
			}
			if seen[n] {
				t.Fatalf("UniqueName(%q) returned %q twice", prefix, n)
			}
			seen[n] = true
		}
	}
	if n := UniqueName(t, "Store"); !strings.HasPrefix(n, "store") {
		t.Errorf("UniqueName(%q) = %q, want the prefix kept", "Store", n)
	}
}
