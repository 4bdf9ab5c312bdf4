package blob

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
)

// The containers' tests run the real azblob client as the platform's managed identity
// through the stand-in's storage front (RBAC) against the test Azurite, the path the
// environment default takes in the local stack.

// createGate is the transport of Containers in the tests: it counts Create Container
// requests and can hold them or answer them with a fault.
type createGate struct {
	next policy.Transporter

	mu      sync.Mutex
	creates int
	hold    chan struct{} // when not nil, creates wait for it to close
	entered chan struct{} // receives once per create that reached the hold
	fault   int           // when not zero, creates are answered with this status
}

func isCreateContainer(req *http.Request) bool {
	q := req.URL.Query()
	return req.Method == http.MethodPut && q.Get("restype") == "container" && q.Get("comp") == ""
}

func (g *createGate) Do(req *http.Request) (*http.Response, error) {
	if !isCreateContainer(req) {
		return g.next.Do(req)
	}
	g.mu.Lock()
	g.creates++
	hold, entered, fault := g.hold, g.entered, g.fault
	g.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if fault != 0 {
		return faultResponse(req, fault), nil
	}
	return g.next.Do(req)
}

func (g *createGate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.creates
}

// containers is a Containers of the env's managed identity, sending through a new gate.
func (e *sasEnv) containers(tb testing.TB) (*Containers, *createGate) {
	tb.Helper()
	g := &createGate{next: e.transport}
	c, err := NewContainers(e.mi, ContainersOptions{EndpointTemplate: e.template, Transport: g})
	if err != nil {
		tb.Fatal(err)
	}
	return c, g
}

// orgContainer is a new organization's container name in the platform account, deleted
// after the test.
func (e *sasEnv) orgContainer(tb testing.TB) string {
	tb.Helper()
	name := credential.OrgContainerName(credential.DefaultContainerPrefix, "org-"+uuid.NewString())
	tb.Cleanup(func() {
		_, _ = e.customerClient(tb, testenv.DevAccount).DeleteContainer(context.Background(), name, nil)
	})
	return name
}

// exists reports whether the platform account has the container, by its shared key.
func (e *sasEnv) exists(tb testing.TB, name string) bool {
	tb.Helper()
	_, err := e.customerClient(tb, testenv.DevAccount).ServiceClient().NewContainerClient(name).GetProperties(context.Background(), nil)
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return false
	}
	if err != nil {
		tb.Fatal(err)
	}
	return true
}

// TestEnsureContainer: sixteen concurrent first calls make one Create Container as the
// managed identity (Contributor on the platform account), and all succeed; a warm call
// sends nothing; a container that already exists is success, and remembered.
func TestEnsureContainer(t *testing.T) {
	e := newSASEnv(t)
	e.grant(t, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
	c, gate := e.containers(t)
	name := e.orgContainer(t)
	ctx := context.Background()

	gate.mu.Lock()
	gate.hold = make(chan struct{}) // every caller is in before the one request is answered
	gate.mu.Unlock()
	const callers = 16
	errs := make(chan error, callers)
	var started sync.WaitGroup
	for range callers {
		started.Add(1)
		go func() {
			started.Done()
			errs <- c.EnsureContainer(ctx, testenv.DevAccount, name)
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // not a threshold: only gives the callers time to queue up
	close(gate.hold)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("a concurrent first call: %v", err)
		}
	}
	if n := gate.count(); n != 1 {
		t.Errorf("%d Create Container requests for %d concurrent first calls, want 1", n, callers)
	}
	if !e.exists(t, name) {
		t.Fatal("the container was not created")
	}

	if err := c.EnsureContainer(ctx, testenv.DevAccount, name); err != nil || gate.count() != 1 {
		t.Errorf("warm call: %v, %d creates in all; want no new request", err, gate.count())
	}

	// Another instance, which has not seen the container: Storage's 409 is success.
	other, otherGate := e.containers(t)
	for range 2 {
		if err := other.EnsureContainer(ctx, testenv.DevAccount, name); err != nil {
			t.Fatalf("existing container: %v", err)
		}
	}
	if n := otherGate.count(); n != 1 {
		t.Errorf("%d creates for an existing container called twice, want 1 (then remembered)", n)
	}
}

// TestEnsureContainerRefused: a Reader (or no role at all) on the platform account may not
// create containers, as in Azure; the refusal is Storage's code, and nothing is
// remembered, so a fixed role is used at the next call.
func TestEnsureContainerRefused(t *testing.T) {
	e := newSASEnv(t)
	c, gate := e.containers(t)
	name := e.orgContainer(t)
	ctx := context.Background()

	wantMismatch := func(what string) {
		t.Helper()
		err := c.EnsureContainer(ctx, testenv.DevAccount, name)
		var pe *credential.ProviderError
		if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || pe.Code != string(bloberror.AuthorizationPermissionMismatch) || pe.RequestID == "" {
			t.Errorf("%s: got %v, want 403 AuthorizationPermissionMismatch with a request id", what, err)
		}
		if errors.Is(err, credential.ErrUnavailable) {
			t.Errorf("%s: a refusal reported as unavailable", what)
		}
	}
	wantMismatch("no role")
	e.grant(t, miObjectID, localazure.RoleBlobDataReader, accountScope(testenv.DevAccount, platformRG))
	wantMismatch("reader")
	if e.exists(t, name) || c.knownCount() != 0 {
		t.Fatal("a refused creation left a container or a memory of one")
	}
	e.grant(t, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
	if err := c.EnsureContainer(ctx, testenv.DevAccount, name); err != nil {
		t.Fatalf("contributor: %v", err)
	}
	if n := gate.count(); n != 3 || !e.exists(t, name) {
		t.Errorf("%d creates, exists %v; want 3 (each refusal asked again) and the container", n, e.exists(t, name))
	}
}

// TestEnsureContainerFailures: Storage busy is ErrUnavailable and not remembered; a caller
// that stops waiting does not stop the creation for the others; invalid names send
// nothing.
func TestEnsureContainerFailures(t *testing.T) {
	e := newSASEnv(t)
	e.grant(t, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
	ctx := context.Background()

	t.Run("storage busy", func(t *testing.T) {
		c, gate := e.containers(t)
		name := e.orgContainer(t)
		gate.fault = http.StatusServiceUnavailable
		err := c.EnsureContainer(ctx, testenv.DevAccount, name)
		var pe *credential.ProviderError
		if !errors.As(err, &pe) || pe.Status != http.StatusServiceUnavailable || !errors.Is(err, credential.ErrUnavailable) {
			t.Errorf("got %v, want 503 ServerBusy, ErrUnavailable", err)
		}
		if n := gate.count(); n != 3 {
			t.Errorf("%d creates, want 3 (two retries)", n)
		}
		gate.mu.Lock()
		gate.fault = 0
		gate.mu.Unlock()
		if err := c.EnsureContainer(ctx, testenv.DevAccount, name); err != nil || !e.exists(t, name) {
			t.Errorf("after the fault: %v", err)
		}
	})

	t.Run("a caller gives up", func(t *testing.T) {
		c, gate := e.containers(t)
		name := e.orgContainer(t)
		gate.hold, gate.entered = make(chan struct{}), make(chan struct{}, 1)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.EnsureContainer(cctx, testenv.DevAccount, name) }()
		<-gate.entered
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("the caller that gave up got %v", err)
		}
		close(gate.hold)
		if err := c.EnsureContainer(ctx, testenv.DevAccount, name); err != nil { // joins or follows the flight
			t.Fatal(err)
		}
		if n := gate.count(); n != 1 || !e.exists(t, name) {
			t.Errorf("%d creates, exists %v; want the first caller's creation finished for the next", n, e.exists(t, name))
		}
	})

	t.Run("invalid names", func(t *testing.T) {
		c, gate := e.containers(t)
		for _, tc := range [][2]string{{"Platform", "org-x1"}, {testenv.DevAccount, "Org_X"}, {testenv.DevAccount, ""}} {
			if err := c.EnsureContainer(ctx, tc[0], tc[1]); err == nil {
				t.Errorf("%q/%q: accepted", tc[0], tc[1])
			}
		}
		if n := gate.count(); n != 0 {
			t.Errorf("%d creates for invalid names", n)
		}
	})
}

// TestContainersRememberBounded: past MaxKnown one container is forgotten; its next call
// asks Storage again, which answers that it exists.
func TestContainersRememberBounded(t *testing.T) {
	e := newSASEnv(t)
	e.grant(t, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
	gate := &createGate{next: e.transport}
	c, err := NewContainers(e.mi, ContainersOptions{EndpointTemplate: e.template, Transport: gate, MaxKnown: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	names := []string{e.orgContainer(t), e.orgContainer(t), e.orgContainer(t)}
	for _, n := range names {
		if err := c.EnsureContainer(ctx, testenv.DevAccount, n); err != nil {
			t.Fatal(err)
		}
	}
	if c.knownCount() != 2 {
		t.Errorf("%d remembered, want the bound 2", c.knownCount())
	}
	for _, n := range names {
		if err := c.EnsureContainer(ctx, testenv.DevAccount, n); err != nil {
			t.Fatal(err)
		}
	}
	if n := gate.count(); n < 4 || n > 6 {
		t.Errorf("%d creates for 3 containers twice with room for 2, want 4 to 6", n)
	}
}

// BenchmarkEnsureContainer measures an organization's first environment-default call's
// extra cost (one Create Container through the storage front) against a warm one (a map
// lookup).
//
//	make test PKGS=./internal/azure/blob/ GOTEST_FLAGS='-run ^$$ -bench EnsureContainer -benchtime 200x'
func BenchmarkEnsureContainer(b *testing.B) {
	e := newSASEnv(b)
	e.grant(b, miObjectID, localazure.RoleBlobDataContributor, accountScope(testenv.DevAccount, platformRG))
	ctx := context.Background()
	b.Run("first", func(b *testing.B) {
		c, _ := e.containers(b)
		names := make([]string, b.N)
		for i := range names {
			names[i] = e.orgContainer(b)
		}
		b.ResetTimer()
		for i := range b.N {
			if err := c.EnsureContainer(ctx, testenv.DevAccount, names[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		c, _ := e.containers(b)
		name := e.orgContainer(b)
		if err := c.EnsureContainer(ctx, testenv.DevAccount, name); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := c.EnsureContainer(ctx, testenv.DevAccount, name); err != nil {
				b.Fatal(err)
			}
		}
	})
}
