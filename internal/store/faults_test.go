package store

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// newProxiedStore opens a store on a fresh table reached through a fault proxy in front
// of the test Azurite, with the SDK's default retry policy (quicker delays).
func newProxiedStore(t *testing.T) (*Store, *faultproxy.Proxy) {
	t.Helper()
	env := testenv.Azurite(t)
	p, err := faultproxy.New(faultproxy.Config{Targets: map[faultproxy.Service]string{faultproxy.ServiceTable: env.TableEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(env.CertFile, filepath.Join(filepath.Dir(env.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p.Handler(faultproxy.ServiceTable))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	env.TableEndpoint = srv.URL
	svc, err := aztables.NewServiceClientFromConnectionString(env.ConnectionString(testenv.DevAccount), &aztables.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "lost")
	s, err := Open(context.Background(), svc, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return s, p
}

func lose(t *testing.T, p *faultproxy.Proxy, op string, f faultproxy.Fault) {
	t.Helper()
	if err := p.Inject(faultproxy.ServiceTable, op, f, 1); err != nil {
		t.Fatal(err)
	}
}
