package integration

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/queue/azurequeue"
	"github.com/activeloopai/azcreds/internal/store"
)

// callCounter is an azcore pipeline policy that counts the storage calls made.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) Do(req *policy.Request) (*http.Response, error) {
	c.n.Add(1)
	return req.Next()
}

// fixture is the domain of one instance on the Table store and the queues of the test
// Azurite, with in-memory Entra, Graph and blob ports, and an Onboarder of "org" on it.
type fixture struct {
	*credentialtest.Onboarder
	t      *testing.T
	fake   *credentialtest.Fakes
	store  *store.Store
	queues *azurequeue.Queues
	poison *azurequeue.Poison
	calls  *callCounter
	// ports and cfg are what the domain was wired with.
	ports credentialtest.Ports
	cfg   credential.Config
}

// options of a fixture.
type options struct {
	// proxy, when set, stands between the clients and Azurite (tables and queues), with
	// quick SDK retries.
	proxy *faultproxy.Proxy
	// limits cap every organization of the store.
	limits store.Limits
}

// newFixture wires the domain with cfg (poll intervals of a second unless it sets them) on
// fresh storage; with, when not nil, changes the ports first.
func newFixture(t *testing.T, cfg credential.Config, opt options, with func(*credentialtest.Ports, *fixture)) *fixture {
	t.Helper()
	env := testenv.Azurite(t)
	ctx := context.Background()
	f := &fixture{t: t, fake: credentialtest.NewFakes(), calls: &callCounter{}}
	clientOpts := azcore.ClientOptions{PerCallPolicies: []policy.Policy{f.calls}}
	if opt.proxy != nil {
		env = behind(t, env, opt.proxy)
		clientOpts.Retry = policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}
	}
	conn := env.ConnectionString(testenv.DevAccount)
	tables, err := aztables.NewServiceClientFromConnectionString(conn, &aztables.ClientOptions{ClientOptions: clientOpts})
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "it")
	if f.store, err = store.Open(ctx, tables, name, store.WithLimits(opt.limits)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tables.DeleteTable(context.Background(), name, nil) })
	qsvc, err := azqueue.NewServiceClientFromConnectionString(conn, &azqueue.ClientOptions{ClientOptions: clientOpts})
	if err != nil {
		t.Fatal(err)
	}
	prefix := testenv.UniqueName(t, "q")
	if f.queues, err = azurequeue.Open(ctx, qsvc, azurequeue.Options{NamePrefix: prefix, Now: f.fake.Clock.Now}); err != nil {
		t.Fatal(err)
	}
	if f.poison, err = azurequeue.OpenPoison(ctx, qsvc, azurequeue.Options{NamePrefix: prefix}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, jq := range queue.JobQueues {
			_, _ = qsvc.NewQueueClient(prefix+jq.Queue).Delete(context.Background(), nil)
			_, _ = qsvc.NewQueueClient(prefix+jq.Queue+queue.PoisonSuffix).Delete(context.Background(), nil)
		}
	})
	if cfg.SPPollInterval == 0 {
		cfg.SPPollInterval = time.Second
	}
	if cfg.AccessProbeInterval == 0 {
		cfg.AccessProbeInterval = time.Second
	}
	f.cfg = cfg
	f.ports = f.fake.Ports()
	f.ports.Store, f.ports.Workspaces, f.ports.Health, f.ports.Scheduler = f.store, f.store, f.store, f.queues
	f.ports.Index, f.ports.Poison = f.store, f.poison
	f.ports.WorkloadIdentities = f.store
	if with != nil {
		with(&f.ports, f)
	}
	d := credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: f.ports, Now: f.fake.Clock.Now})
	f.Onboarder = &credentialtest.Onboarder{T: t, Org: "org", Domain: d, Store: f.store, Queue: azureQueue{t: t, qs: f.queues},
		Finder: f.fake.Finder, Prober: f.fake.Prober, Now: f.fake.Clock.Now}
	return f
}

// behind points env's tables and queues at p, which forwards to Azurite over TLS.
func behind(t *testing.T, env testenv.Env, p *faultproxy.Proxy) testenv.Env {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(env.CertFile, filepath.Join(filepath.Dir(env.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []faultproxy.Service{faultproxy.ServiceTable, faultproxy.ServiceQueue} {
		srv := httptest.NewUnstartedServer(p.Handler(svc))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		if svc == faultproxy.ServiceTable {
			env.TableEndpoint = srv.URL
		} else {
			env.QueueEndpoint = srv.URL
		}
	}
	return env
}

// proxy is a fault proxy in front of the test Azurite's tables and queues; a timeout
// fault holds a request for hold.
func proxy(t *testing.T, hold time.Duration) *faultproxy.Proxy {
	t.Helper()
	env := testenv.Azurite(t)
	p, err := faultproxy.New(faultproxy.Config{Hold: hold, Targets: map[faultproxy.Service]string{
		faultproxy.ServiceTable: env.TableEndpoint, faultproxy.ServiceQueue: env.QueueEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// azureQueue takes the jobs of the test's queues, as credentialtest.Queue.
type azureQueue struct {
	t  testing.TB
	qs *azurequeue.Queues
}

// Take drains the queue of kind, delayed jobs included: it waits (up to 3 s) for a
// delayed message to become visible until a dequeue after the first message finds none.
func (q azureQueue) Take(kind credential.JobKind) []credential.Job {
	q.t.Helper()
	var out []credential.Job
	for deadline := time.Now().Add(3 * time.Second); ; {
		got := q.dequeue(kind, 32)
		out = append(out, got...)
		if len(got) == 0 && (len(out) > 0 || time.Now().After(deadline)) {
			return out
		}
		if len(got) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// Next waits (up to 10 s) for the next message of kind, delayed ones included, and takes
// it, as its first delivery.
func (q azureQueue) Next(kind credential.JobKind) (credential.Job, bool) {
	q.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got := q.dequeue(kind, 1); len(got) == 1 {
			got[0].Delivery = 1
			return got[0], true
		}
	}
	return credential.Job{}, false
}

// Pending counts the queue's messages, delayed (invisible) ones included.
func (q azureQueue) Pending(kind credential.JobKind) int {
	q.t.Helper()
	p, err := q.qs.Client(kind).GetProperties(context.Background(), nil)
	if err != nil {
		q.t.Fatal(err)
	}
	return int(*p.ApproximateMessagesCount)
}

// deliver dequeues up to n visible messages of kind and hands each, with its delivery
// count, to run before deleting it.
func (q azureQueue) deliver(kind credential.JobKind, n int32, run func(credential.Job)) int {
	q.t.Helper()
	ctx := context.Background()
	c := q.qs.Client(kind)
	resp, err := c.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		q.t.Fatal(err)
	}
	for _, m := range resp.Messages {
		job, err := queue.Decode(*m.MessageText)
		if err != nil {
			q.t.Fatal(err)
		}
		job.Delivery = int(*m.DequeueCount)
		run(job)
		if _, err := c.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil); err != nil {
			q.t.Fatal(err)
		}
	}
	return len(resp.Messages)
}

// dequeue takes up to n visible messages of kind, without a delivery count.
func (q azureQueue) dequeue(kind credential.JobKind, n int32) []credential.Job {
	var out []credential.Job
	q.deliver(kind, n, func(j credential.Job) { j.Delivery = 0; out = append(out, j) })
	return out
}
