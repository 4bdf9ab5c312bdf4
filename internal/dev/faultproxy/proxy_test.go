package faultproxy_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// stack is a proxy in front of the test Azurite, one TLS listener per service, served
// with Azurite's own certificate, and an Env whose endpoints are the proxy's.
type stack struct {
	proxy *faultproxy.Proxy
	env   testenv.Env // the proxy's endpoints
	urls  map[faultproxy.Service]string
}

func newStack(t *testing.T, cfg faultproxy.Config) *stack {
	t.Helper()
	azurite := testenv.Azurite(t)
	cfg.Targets = map[faultproxy.Service]string{
		faultproxy.ServiceBlob: azurite.BlobEndpoint, faultproxy.ServiceQueue: azurite.QueueEndpoint,
		faultproxy.ServiceTable: azurite.TableEndpoint,
	}
	p, err := faultproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(azurite.CertFile, filepath.Join(filepath.Dir(azurite.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{proxy: p, env: azurite, urls: map[faultproxy.Service]string{}}
	for _, svc := range faultproxy.Services {
		srv := httptest.NewUnstartedServer(p.Handler(svc))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		s.urls[svc] = srv.URL
	}
	s.env.BlobEndpoint, s.env.QueueEndpoint, s.env.TableEndpoint = s.urls[faultproxy.ServiceBlob], s.urls[faultproxy.ServiceQueue], s.urls[faultproxy.ServiceTable]
	s.env.ConnString = s.env.ConnectionString(testenv.DevAccount)
	return s
}

// clientOptions: retries > 0 retry quickly; retries < 0 make one try only.
func clientOptions(retries int32) azcore.ClientOptions {
	return azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: retries, RetryDelay: 5 * time.Millisecond,
		MaxRetryDelay: 20 * time.Millisecond, TryTimeout: 10 * time.Second}}
}

func (s *stack) tables(t *testing.T, retries int32) *aztables.ServiceClient {
	t.Helper()
	c, err := aztables.NewServiceClientFromConnectionString(s.env.ConnString, &aztables.ClientOptions{ClientOptions: clientOptions(retries)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *stack) queues(t *testing.T, retries int32) *azqueue.ServiceClient {
	t.Helper()
	c, err := azqueue.NewServiceClientFromConnectionString(s.env.ConnString, &azqueue.ClientOptions{ClientOptions: clientOptions(retries)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *stack) blobs(t *testing.T, retries int32) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(s.env.ConnString, &azblob.ClientOptions{ClientOptions: clientOptions(retries)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newTable creates a fresh table through the proxy, removed after the test, and returns
// a client of it and its name.
func (s *stack) newTable(t *testing.T) (*aztables.Client, string) {
	t.Helper()
	svc := s.tables(t, 3)
	name := testenv.UniqueName(t, "fp")
	if _, err := svc.CreateTable(context.Background(), name, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = svc.DeleteTable(context.Background(), name, nil) })
	return svc.NewClient(name), name
}

func entity(pk, rk string) []byte {
	b, _ := json.Marshal(map[string]string{"PartitionKey": pk, "RowKey": rk, "Value": "v"})
	return b
}

func responseCode(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, ""
}

// TestCountsEveryTransaction: with no faults the proxy forwards everything and counts
// each SDK call once, by operation.
func TestCountsEveryTransaction(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	ctx := context.Background()
	table, _ := s.newTable(t)
	before := s.proxy.Stats()

	if _, err := table.AddEntity(ctx, entity("p", "1"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := table.GetEntity(ctx, "p", "1", nil); err != nil {
		t.Fatal(err)
	}
	actions := []aztables.TransactionAction{{ActionType: aztables.TransactionTypeAdd, Entity: entity("p", "2")},
		{ActionType: aztables.TransactionTypeAdd, Entity: entity("p", "3")}}
	if _, err := table.SubmitTransaction(ctx, actions, nil); err != nil {
		t.Fatal(err)
	}
	pager := table.NewListEntitiesPager(nil)
	for pager.More() {
		if _, err := pager.NextPage(ctx); err != nil {
			t.Fatal(err)
		}
	}

	qname := testenv.UniqueName(t, "fpq")
	queues := s.queues(t, 3)
	if _, err := queues.CreateQueue(ctx, qname, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = queues.DeleteQueue(context.Background(), qname, nil) })
	q := queues.NewQueueClient(qname)
	if _, err := q.EnqueueMessage(ctx, "hello", nil); err != nil {
		t.Fatal(err)
	}
	got, err := q.DequeueMessage(ctx, nil)
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("dequeue: %v %v", got, err)
	}
	if _, err := q.DeleteMessage(ctx, *got.Messages[0].MessageID, *got.Messages[0].PopReceipt, nil); err != nil {
		t.Fatal(err)
	}

	container := testenv.UniqueName(t, "fpc")
	blobs := s.blobs(t, 3)
	if _, err := blobs.CreateContainer(ctx, container, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = blobs.DeleteContainer(context.Background(), container, nil) })
	if _, err := blobs.UploadBuffer(ctx, container, "dir/probe.txt", []byte("probe"), nil); err != nil {
		t.Fatal(err)
	}
	dl, err := blobs.DownloadStream(ctx, container, "dir/probe.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, dl.Body)
	dl.Body.Close()
	blobPager := blobs.NewListBlobsFlatPager(container, nil)
	for blobPager.More() {
		if _, err := blobPager.NextPage(ctx); err != nil {
			t.Fatal(err)
		}
	}

	d := s.proxy.Stats().Sub(before)
	want := map[faultproxy.Service]map[string]int64{
		faultproxy.ServiceTable: {"POST entities": 1, "GET entity": 1, "POST batch": 1, "GET entities": 1},
		faultproxy.ServiceQueue: {"PUT queue": 1, "POST messages": 1, "GET messages": 1, "DELETE message": 1},
		faultproxy.ServiceBlob:  {"PUT container": 1, "PUT blob": 1, "GET blob": 1, "GET container?comp=list": 1},
	}
	for svc, ops := range want {
		st := d.Services[svc]
		if fmt.Sprint(st.Operations) != fmt.Sprint(ops) {
			t.Errorf("%s operations = %v, want %v", svc, st.Operations, ops)
		}
		if st.Requests != int64(len(ops)) || st.Forwarded != st.Requests || st.Faults.Total() != 0 {
			t.Errorf("%s: requests %d, forwarded %d, faults %+v", svc, st.Requests, st.Forwarded, st.Faults)
		}
	}
	t.Logf("transactions: %d in total: %+v", d.Requests(), d)
}

// TestServerBusyInEachServiceFormat: a busy fault answers 503 ServerBusy before Azurite
// sees the request, in the error format the service's SDK parses.
func TestServerBusyInEachServiceFormat(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	ctx := context.Background()
	table, tname := s.newTable(t)
	if err := s.proxy.SetRates(faultproxy.Rates{Busy: 1}); err != nil {
		t.Fatal(err)
	}
	noRetry := s.tables(t, -1).NewClient(tname)
	_, err := noRetry.AddEntity(ctx, entity("p", "busy"), nil)
	if st, code := responseCode(err); st != http.StatusServiceUnavailable || code != "ServerBusy" {
		t.Errorf("table insert: %d %q (%v), want 503 ServerBusy", st, code, err)
	}
	_, err = s.queues(t, -1).CreateQueue(ctx, testenv.UniqueName(t, "busy"), nil)
	if st, code := responseCode(err); st != http.StatusServiceUnavailable || code != "ServerBusy" {
		t.Errorf("queue create: %d %q (%v), want 503 ServerBusy", st, code, err)
	}
	_, err = s.blobs(t, -1).CreateContainer(ctx, testenv.UniqueName(t, "busy"), nil)
	if st, code := responseCode(err); st != http.StatusServiceUnavailable || code != "ServerBusy" {
		t.Errorf("container create: %d %q (%v), want 503 ServerBusy", st, code, err)
	}

	// The bodies themselves: JSON odata.error for Table, XML <Error> for Queue and Blob.
	for _, svc := range faultproxy.Services {
		resp, err := http.Get(s.urls[svc] + "/" + testenv.DevAccount + "/anything")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var code string
		if svc == faultproxy.ServiceTable {
			var e struct {
				Err struct {
					Code string `json:"code"`
				} `json:"odata.error"`
			}
			_ = json.Unmarshal(body, &e)
			code = e.Err.Code
		} else {
			var e struct {
				Code string `xml:"Code"`
			}
			_ = xml.Unmarshal(body, &e)
			code = e.Code
		}
		if resp.StatusCode != http.StatusServiceUnavailable || code != "ServerBusy" || resp.Header.Get("x-ms-error-code") != "ServerBusy" {
			t.Errorf("%s: %d, body code %q, header %q: %s", svc, resp.StatusCode, code, resp.Header.Get("x-ms-error-code"), body)
		}
	}

	if err := s.proxy.SetRates(faultproxy.Rates{}); err != nil {
		t.Fatal(err)
	}
	if _, err := table.GetEntity(ctx, "p", "busy", nil); !isCode(err, "ResourceNotFound") {
		t.Errorf("the busy insert reached Azurite: %v", err)
	}
	st := s.proxy.Stats()
	for _, svc := range faultproxy.Services {
		if st.Services[svc].Faults.Busy < 2 {
			t.Errorf("%s busy faults = %d, want 2", svc, st.Services[svc].Faults.Busy)
		}
	}
}

func isCode(err error, code string) bool {
	_, c := responseCode(err)
	return c == code
}

// TestLostResponseDidTheWork: a lost answer hides work Azurite did, so the client's own
// retry of an insert meets its first attempt (409 EntityAlreadyExists) and a retried
// enqueue leaves two messages. This is the hazard the product must absorb.
func TestLostResponseDidTheWork(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	ctx := context.Background()
	table, tname := s.newTable(t)
	qname := testenv.UniqueName(t, "lost")
	queues := s.queues(t, 3)
	if _, err := queues.CreateQueue(ctx, qname, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = queues.DeleteQueue(context.Background(), qname, nil) })

	// One try, every answer lost: the client sees a failure, Azurite did the work.
	if err := s.proxy.SetRates(faultproxy.Rates{Lost: 1}, faultproxy.ServiceTable, faultproxy.ServiceQueue); err != nil {
		t.Fatal(err)
	}
	noRetry := s.tables(t, -1).NewClient(tname)
	const n = 8
	for i := range n {
		if _, err := noRetry.AddEntity(ctx, entity("p", fmt.Sprint(i)), nil); err == nil {
			t.Fatalf("insert %d succeeded through a lost answer", i)
		}
	}
	if _, err := s.queues(t, -1).NewQueueClient(qname).EnqueueMessage(ctx, "once", nil); err == nil {
		t.Fatal("enqueue succeeded through a lost answer")
	}

	// With the faults off, the retry a client makes meets the first attempt.
	if err := s.proxy.SetRates(faultproxy.Rates{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := table.AddEntity(ctx, entity("p", fmt.Sprint(i)), nil); !isCode(err, "EntityAlreadyExists") {
			t.Errorf("retried insert %d: %v, want 409 EntityAlreadyExists", i, err)
		}
	}
	q := queues.NewQueueClient(qname)
	if _, err := q.EnqueueMessage(ctx, "once", nil); err != nil {
		t.Fatal(err)
	}
	props, err := q.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if props.ApproximateMessagesCount == nil || *props.ApproximateMessagesCount != 2 {
		t.Errorf("messages after a lost enqueue and its retry = %v, want 2", props.ApproximateMessagesCount)
	}
	f := s.proxy.Stats().Services[faultproxy.ServiceTable].Faults
	if f.LostBusy+f.LostDropped != n || f.LostBusy == 0 || f.LostDropped == 0 {
		t.Errorf("table lost faults %+v, want %d split between 503 and dropped connections", f, n)
	}
}

// TestTimeoutNeverForwards: a timeout fault holds the request, drops the connection and
// never lets Azurite see it.
func TestTimeoutNeverForwards(t *testing.T) {
	s := newStack(t, faultproxy.Config{Hold: 200 * time.Millisecond})
	ctx := context.Background()
	table, tname := s.newTable(t)
	before := s.proxy.Stats()
	if err := s.proxy.SetRates(faultproxy.Rates{Timeout: 1}, faultproxy.ServiceTable); err != nil {
		t.Fatal(err)
	}
	noRetry := s.tables(t, -1).NewClient(tname)
	_, err := noRetry.AddEntity(ctx, entity("p", "held"), nil)
	if err == nil {
		t.Fatal("insert succeeded through a timeout")
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		t.Errorf("a timeout answered %d %s; want no answer at all", re.StatusCode, re.ErrorCode)
	}
	// A client that gives up first ends the hold. It gives up once the proxy holds its
	// request, so the request is counted however slowly it arrives.
	short, cancel := context.WithCancel(ctx)
	defer cancel()
	held := s.proxy.Stats().Services[faultproxy.ServiceTable].Faults.Timeout
	go func() {
		for s.proxy.Stats().Services[faultproxy.ServiceTable].Faults.Timeout == held && short.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := noRetry.AddEntity(short, entity("p", "held2"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("insert given up by its client: %v, want context.Canceled", err)
	}
	if err := s.proxy.SetRates(faultproxy.Rates{}); err != nil {
		t.Fatal(err)
	}
	for _, rk := range []string{"held", "held2"} {
		if _, err := table.GetEntity(ctx, "p", rk, nil); !isCode(err, "ResourceNotFound") {
			t.Errorf("%s reached Azurite: %v", rk, err)
		}
	}
	d := s.proxy.Stats().Sub(before).Services[faultproxy.ServiceTable]
	if d.Faults.Timeout != 2 || d.Forwarded != d.Requests-2 {
		t.Errorf("timeouts %d, requests %d, forwarded %d", d.Faults.Timeout, d.Requests, d.Forwarded)
	}
}

// TestSDKRetriesAbsorbBusy: at a 30% busy rate the SDK's own retries still get every
// idempotent read and every fresh insert through, and the counters show the faults.
func TestSDKRetriesAbsorbBusy(t *testing.T) {
	s := newStack(t, faultproxy.Config{Seed: 3})
	ctx := context.Background()
	_, tname := s.newTable(t)
	if err := s.proxy.SetRates(faultproxy.Rates{Busy: 0.3}); err != nil {
		t.Fatal(err)
	}
	retrying := s.tables(t, 8).NewClient(tname)
	const n = 30
	for i := range n {
		if _, err := retrying.AddEntity(ctx, entity("p", fmt.Sprint(i)), nil); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		if _, err := retrying.GetEntity(ctx, "p", fmt.Sprint(i), nil); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	st := s.proxy.Stats().Services[faultproxy.ServiceTable]
	t.Logf("%d calls took %d requests; %d busy faults", 2*n, st.Requests, st.Faults.Busy)
	if st.Faults.Busy == 0 || st.Requests != int64(2*n)+st.Faults.Busy+1 { // +1: the table's creation
		t.Errorf("requests %d, busy %d: want one extra request per busy fault", st.Requests, st.Faults.Busy)
	}
}

// TestControlEndpoints: stats and rates over HTTP on every listener, never counted,
// never colliding with storage.
func TestControlEndpoints(t *testing.T) {
	s := newStack(t, faultproxy.Config{Hold: time.Second})
	do := func(method, svcURL, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, svcURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	queueURL := s.urls[faultproxy.ServiceQueue]
	if st, b := do(http.MethodPost, queueURL, "/_faultproxy/config", `{"rates":{"busy":0.5,"timeout":0.1},"services":["table"]}`); st != http.StatusOK {
		t.Fatalf("set rates: %d %s", st, b)
	}
	rates := s.proxy.Rates()
	if rates[faultproxy.ServiceTable] != (faultproxy.Rates{Busy: 0.5, Timeout: 0.1}) || rates[faultproxy.ServiceBlob] != (faultproxy.Rates{}) {
		t.Errorf("rates = %+v", rates)
	}
	for name, body := range map[string]string{
		"above 1":         `{"rates":{"busy":1.5}}`,
		"sum above 1":     `{"rates":{"busy":0.6,"lost":0.6}}`,
		"unknown service": `{"rates":{"busy":0.1},"services":["file"]}`,
		"unknown field":   `{"rates":{"busy":0.1},"rate":1}`,
	} {
		if st, b := do(http.MethodPost, queueURL, "/_faultproxy/config", body); st != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, st, b)
		}
	}
	if st, b := do(http.MethodGet, s.urls[faultproxy.ServiceBlob], "/_faultproxy/config", ""); st != http.StatusOK || !strings.Contains(string(b), `"hold": "1s"`) {
		t.Errorf("get config: %d %s", st, b)
	}
	if st, _ := do(http.MethodGet, queueURL, "/_faultproxy/nothing", ""); st != http.StatusNotFound {
		t.Errorf("unknown control path: %d", st)
	}
	// A storage request goes through; control requests are not counted.
	if _, err := s.queues(t, 3).CreateQueue(context.Background(), testenv.UniqueName(t, "ctl"), nil); err != nil {
		t.Fatal(err)
	}
	st, b := do(http.MethodGet, queueURL, "/_faultproxy/stats", "")
	var stats faultproxy.Stats
	if err := json.Unmarshal(b, &stats); st != http.StatusOK || err != nil {
		t.Fatalf("stats: %d %v %s", st, err, b)
	}
	if q := stats.Services[faultproxy.ServiceQueue]; q.Requests != 1 || q.Operations["PUT queue"] != 1 {
		t.Errorf("queue stats = %+v, want the one create", q)
	}
	if st, _ := do(http.MethodPost, queueURL, "/_faultproxy/reset", ""); st != http.StatusOK || s.proxy.Stats().Requests() != 0 {
		t.Errorf("reset: %d, requests after %d", st, s.proxy.Stats().Requests())
	}
}

func TestNewValidates(t *testing.T) {
	good := map[faultproxy.Service]string{faultproxy.ServiceTable: "https://127.0.0.1:10002"}
	for name, cfg := range map[string]faultproxy.Config{
		"no target":       {},
		"unknown service": {Targets: map[faultproxy.Service]string{"file": "https://127.0.0.1:1"}},
		"target path":     {Targets: map[faultproxy.Service]string{faultproxy.ServiceTable: "https://127.0.0.1:1/devstoreaccount1"}},
		"bad rates":       {Targets: good, Rates: faultproxy.Rates{Busy: 0.5, Lost: 0.5, Timeout: 0.5}},
		"negative hold":   {Targets: good, Hold: -time.Second},
	} {
		if _, err := faultproxy.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestOperation(t *testing.T) {
	for _, tt := range []struct {
		svc         faultproxy.Service
		method, url string
		host        string
		want        string
	}{
		{faultproxy.ServiceTable, "POST", "/devstoreaccount1/Tables", "", "POST tables"},
		{faultproxy.ServiceTable, "DELETE", "/devstoreaccount1/Tables('t1')", "", "DELETE tables"},
		{faultproxy.ServiceTable, "POST", "/devstoreaccount1/$batch", "", "POST batch"},
		{faultproxy.ServiceTable, "GET", "/devstoreaccount1/t1(PartitionKey='a',RowKey='b')", "", "GET entity"},
		{faultproxy.ServiceTable, "GET", "/devstoreaccount1/t1()?$filter=x", "", "GET entities"},
		{faultproxy.ServiceTable, "POST", "/devstoreaccount1/t1", "", "POST entities"},
		{faultproxy.ServiceTable, "PUT", "/t1(PartitionKey='a',RowKey='b')", "devstoreaccount1.table.localhost:1", "PUT entity"},
		{faultproxy.ServiceQueue, "GET", "/devstoreaccount1?comp=list", "", "GET service?comp=list"},
		{faultproxy.ServiceQueue, "PUT", "/devstoreaccount1/q", "", "PUT queue"},
		{faultproxy.ServiceQueue, "POST", "/devstoreaccount1/q/messages", "", "POST messages"},
		{faultproxy.ServiceQueue, "DELETE", "/devstoreaccount1/q/messages/id?popreceipt=x", "", "DELETE message"},
		{faultproxy.ServiceBlob, "POST", "/?restype=service&comp=userdelegationkey", "custacct1.blob.localhost:9", "POST service?comp=userdelegationkey"},
		{faultproxy.ServiceBlob, "GET", "/c?restype=container&comp=list", "custacct1.blob.localhost:9", "GET container?comp=list"},
		{faultproxy.ServiceBlob, "PUT", "/custacct1/c/a/b/probe", "", "PUT blob"},
	} {
		r := httptest.NewRequest(tt.method, "https://127.0.0.1:1"+tt.url, nil)
		if tt.host != "" {
			r.Host = tt.host
		}
		if got := faultproxy.Operation(tt.svc, r); got != tt.want {
			t.Errorf("Operation(%s %s %s) = %q, want %q", tt.svc, tt.method, tt.url, got, tt.want)
		}
	}
}

// TestInjectLosesExactlyOne: an injected fault fires for the operation named, the number
// of times asked, and the SDK's own retry of an entity group transaction then meets the
// work of its first attempt.
func TestInjectLosesExactlyOne(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	ctx := context.Background()
	table, _ := s.newTable(t)
	if err := s.proxy.Inject(faultproxy.ServiceTable, "POST batch", faultproxy.FaultLostBusy, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.proxy.Inject(faultproxy.ServiceTable, "", faultproxy.FaultNone, 1); err == nil {
		t.Error("Inject accepted FaultNone")
	}
	// Other operations pass untouched.
	if _, err := table.AddEntity(ctx, entity("p", "plain"), nil); err != nil {
		t.Fatal(err)
	}
	actions := []aztables.TransactionAction{{ActionType: aztables.TransactionTypeAdd, Entity: entity("p", "batched")}}
	_, err := table.SubmitTransaction(ctx, actions, nil)
	if err == nil {
		t.Fatal("the retried transaction succeeded; its first attempt should have taken the row")
	}
	if _, err := table.GetEntity(ctx, "p", "batched", nil); err != nil {
		t.Errorf("the first attempt did not land: %v", err)
	}
	st := s.proxy.Stats().Services[faultproxy.ServiceTable]
	if st.Faults.LostBusy != 1 || st.OperationFaults["POST batch"] != 1 || st.Operations["POST batch"] != 2 {
		t.Errorf("stats %+v: want one lost batch answer and its retry", st)
	}
}

// TestInjectThenRunsBeforeTheRetry: InjectThen loses one answer and runs its function once
// Azurite has done the work and before the client retries: it sees the row the lost
// attempt wrote, and what it writes is there when the retry comes.
func TestInjectThenRunsBeforeTheRetry(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	ctx := context.Background()
	table, _ := s.newTable(t)
	if err := s.proxy.InjectThen(faultproxy.ServiceTable, "POST batch", faultproxy.FaultTimeout, func() {}); err == nil {
		t.Error("InjectThen accepted a fault that loses no answer")
	}
	ran := 0
	if err := s.proxy.InjectThen(faultproxy.ServiceTable, "POST batch", faultproxy.FaultLostBusy, func() {
		ran++
		if _, err := table.GetEntity(ctx, "p", "batched", nil); err != nil {
			t.Errorf("before the retry, the lost attempt's row: %v", err)
		}
		if _, err := table.AddEntity(ctx, entity("p", "meanwhile"), nil); err != nil {
			t.Errorf("a write meanwhile: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	actions := []aztables.TransactionAction{{ActionType: aztables.TransactionTypeAdd, Entity: entity("p", "batched")}}
	if _, err := table.SubmitTransaction(ctx, actions, nil); err == nil {
		t.Fatal("the retried transaction succeeded; its first attempt should have taken the row")
	}
	if ran != 1 {
		t.Fatalf("the function ran %d times, want once", ran)
	}
	if _, err := table.GetEntity(ctx, "p", "meanwhile", nil); err != nil {
		t.Errorf("the write made meanwhile: %v", err)
	}
	if st := s.proxy.Stats().Services[faultproxy.ServiceTable]; st.Faults.LostBusy != 1 || st.Operations["POST batch"] != 2 {
		t.Errorf("stats %+v: want one lost batch answer and its retry", st)
	}
}

// TestDropLosesEnqueuesOutright: with Drop at 1, an enqueue is answered as done (the SDK
// reads a message id) and never reaches Azurite; an enqueue to a poison queue, and every
// other queue operation, passes.
func TestDropLosesEnqueuesOutright(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	svc := s.queues(t, -1)
	ctx := context.Background()
	name := testenv.UniqueName(t, "drop")
	q, poison := svc.NewQueueClient(name), svc.NewQueueClient(name+"-poison")
	for _, c := range []*azqueue.QueueClient{q, poison} {
		if _, err := c.Create(ctx, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.Delete(context.Background(), nil) })
	}
	if err := s.proxy.SetRates(faultproxy.Rates{Drop: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := q.EnqueueMessage(ctx, "lost", nil)
	if err != nil || len(resp.Messages) != 1 || resp.Messages[0].MessageID == nil || resp.Messages[0].PopReceipt == nil {
		t.Fatalf("dropped enqueue: %+v %v, want an answer as if queued", resp, err)
	}
	if _, err := poison.EnqueueMessage(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[*azqueue.QueueClient]int{q: 0, poison: 1} {
		props, err := c.GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := int(*props.ApproximateMessagesCount); n != want {
			t.Errorf("queue holds %d messages, want %d", n, want)
		}
	}
	if f := s.proxy.Stats().Sub(faultproxy.Stats{}).Services[faultproxy.ServiceQueue].Faults; f.Dropped != 1 || f.Total() != 1 {
		t.Errorf("faults %+v, want one drop", f)
	}
}

// TestKeepMessagesSparesThemFromDrop: with Drop at 1, an enqueue whose message names what
// KeepMessages keeps (as sent, or inside base64 as the job queues carry it) reaches the
// queue, and every other enqueue is lost.
func TestKeepMessagesSparesThemFromDrop(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	svc := s.queues(t, -1)
	ctx := context.Background()
	q := svc.NewQueueClient(testenv.UniqueName(t, "keep"))
	if _, err := q.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = q.Delete(context.Background(), nil) })
	if err := s.proxy.KeepMessages(""); err == nil {
		t.Error("KeepMessages(\"\") accepted: it would keep every message")
	}
	if err := s.proxy.KeepMessages(`"org":"org-watched"`); err != nil {
		t.Fatal(err)
	}
	if err := s.proxy.SetRates(faultproxy.Rates{Drop: 1}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		base64.StdEncoding.EncodeToString([]byte(`{"org":"org-watched","attempt":1}`)),
		`{"org":"org-watched","attempt":2}`,
		base64.StdEncoding.EncodeToString([]byte(`{"org":"org-other","attempt":1}`)),
		`{"org":"org-other","attempt":2}`,
	} {
		if _, err := q.EnqueueMessage(ctx, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	props, err := q.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := *props.ApproximateMessagesCount; n != 2 {
		t.Errorf("queue holds %d messages, want the two watched ones", n)
	}
	if f := s.proxy.Stats().Sub(faultproxy.Stats{}).Services[faultproxy.ServiceQueue].Faults; f.Dropped != 2 || f.Total() != 2 {
		t.Errorf("faults %+v, want the two other messages dropped", f)
	}
}

// TestOutageOfOnePartition: during an Outage matching one partition's key, every table
// request naming it (a read, a transaction) answers ServerBusy; another partition is
// served; after it, the partition is served again.
func TestOutageOfOnePartition(t *testing.T) {
	s := newStack(t, faultproxy.Config{})
	table, _ := s.newTable(t)
	ctx := context.Background()
	for _, pk := range []string{"org-a", "org-b"} {
		if _, err := table.AddEntity(ctx, entity(pk, "r1"), nil); err != nil {
			t.Fatal(err)
		}
	}
	const d = 2 * time.Second
	if err := s.proxy.Outage(faultproxy.ServiceTable, d, "PartitionKey='org-a'", `"PartitionKey":"org-a"`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := table.GetEntity(ctx, "org-a", "r1", nil)
	if code, _ := responseCode(err); code != http.StatusServiceUnavailable {
		t.Fatalf("read of the partition in its outage: %v, want 503", err)
	}
	_, err = table.SubmitTransaction(ctx, []aztables.TransactionAction{{ActionType: aztables.TransactionTypeAdd, Entity: entity("org-a", "r2")}}, nil)
	if code, _ := responseCode(err); code != http.StatusServiceUnavailable {
		t.Fatalf("transaction on the partition in its outage: %v, want 503", err)
	}
	if _, err := table.GetEntity(ctx, "org-b", "r1", nil); err != nil {
		t.Fatalf("another partition in the outage: %v", err)
	}
	if time.Since(start) > d {
		t.Skip("the machine was too slow to see the outage before it ended")
	}
	time.Sleep(d - time.Since(start) + 100*time.Millisecond)
	if _, err := table.GetEntity(ctx, "org-a", "r1", nil); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	// Each of the two calls tried four times (newTable's client retries three times).
	if f := s.proxy.Stats().Sub(faultproxy.Stats{}).Services[faultproxy.ServiceTable].Faults; f.Outage != 8 {
		t.Errorf("faults %+v, want the eight tries of two calls answered by the outage", f)
	}
}
