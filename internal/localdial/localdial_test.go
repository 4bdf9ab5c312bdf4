package localdial

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDialer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "front saw "+r.Host)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	d, err := New(addr, ParseAccounts(" custacct1, CustAcct2 ,,"))
	if err != nil {
		t.Fatal(err)
	}
	client := d.Client(nil)

	for _, host := range []string{"custacct1.blob.localhost:10443", "custacct2.blob.localhost:1", "CUSTACCT1.blob.localhost.:9"} {
		resp, err := client.Get("http://" + host + "/c/b")
		if err != nil {
			t.Fatalf("GET %s: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "front saw " + host; string(body) != want {
			t.Errorf("GET %s: body %q, want %q", host, body, want)
		}
	}

	// An account not in the list does not resolve, exactly as a missing Azure account.
	for _, host := range []string{"nosuchacct.blob.localhost:10443", "custacct3.blob.localhost:10443"} {
		_, err := client.Get("http://" + host + "/")
		var dns *net.DNSError
		if !errors.As(err, &dns) || !dns.IsNotFound || dns.Name != strings.Split(host, ":")[0] {
			t.Errorf("GET %s: error %v, want a *net.DNSError with IsNotFound for the host", host, err)
		}
	}

	// Other hosts are dialled as they are.
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", srv.URL, err)
	}
	resp.Body.Close()
}

func TestNewRejects(t *testing.T) {
	if _, err := New("127.0.0.1", []string{"a"}); err == nil {
		t.Error("New accepted an address without a port")
	}
	if _, err := New("127.0.0.1:10443", ParseAccounts(" , ")); err == nil {
		t.Error("New accepted no accounts")
	}
}
