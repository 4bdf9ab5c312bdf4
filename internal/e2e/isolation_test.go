package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// isolationParty is one organization of the isolation matrix with the SAS /creds gave it.
type isolationParty struct {
	name    string // B, C, D, E
	source  string // what serves it
	api     *walkthrough.API
	creds   walkthrough.Creds
	account string
}

// isolationTarget is a container a SAS is tried on, with a blob in it to read and delete.
type isolationTarget struct {
	label     string
	account   string
	container string
	prefix    string // where its owner writes; "" for containers nobody owns
	seed      string // a blob that must survive everyone else's attempts
	owner     *isolationParty
}

// The data-plane operations of the matrix.
var isolationOps = []string{"read", "write", "list", "delete"}

// outcome is "ok" or the status and storage error code of a refusal.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	}
	return "error: " + err.Error()
}

// tryOp runs one operation of the matrix on target with party's SAS alone.
func tryOp(ctx context.Context, t *testing.T, si *standIn, p *isolationParty, tg isolationTarget, op string) error {
	c := sasContainer(t, si, blobFrontURL(si, tg.account, tg.container), p.creds.SASToken)
	written := tg.prefix + "written-by-" + p.name + ".txt"
	switch op {
	case "read":
		resp, err := c.NewBlobClient(tg.seed).DownloadStream(ctx, nil)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		return err
	case "write":
		_, err := c.NewBlockBlobClient(written).UploadBuffer(ctx, []byte("from "+p.name), nil)
		return err
	case "list":
		_, err := c.NewListBlobsFlatPager(nil).NextPage(ctx)
		return err
	case "delete":
		victim := tg.seed
		if tg.owner == p {
			victim = written // its own: the blob it just wrote, so the seed stays for the check below
		}
		_, err := c.NewBlobClient(victim).Delete(ctx, nil)
		return err
	}
	t.Fatalf("unknown operation %s", op)
	return nil
}

// blobFrontURL is a container's URL on the storage front, product-style.
func blobFrontURL(si *standIn, account, containerName string) string {
	return "https://" + account + ".blob.localhost:" + portOf(si.frontAddr) + "/" + containerName
}

// sharedKeyContainer is the account owner's own view of a container (shared key, straight
// to Azurite), to set up and check only.
func sharedKeyContainer(t *testing.T, env testenv.Env, account, name string) *container.Client {
	t.Helper()
	c, err := container.NewClientFromConnectionString(env.ConnectionString(account), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIsolation is the isolation matrix through the real binaries: organizations B and C
// on the environment default (the platform's account), D and E on customer credentials
// in the same customer account (different containers). Every organization's SAS is tried
// for read, write, list and delete on every organization's container, on another
// container of its own account, and on a container of the same name in another account:
// only its own container answers, everything else is 403, and every blob written by its
// owner is still there afterwards. The matrix is logged as a table.
func TestIsolation(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	h := startHandler(t, env, si, defaultSettings())
	ctx := context.Background()

	// D and E: one customer account, a container each, each verified with its own app.
	d := newOnboarding(t, h, si, "custacct1", true)
	e := newOnboarding(t, h, si, "custacct1", true)
	for _, o := range []*onboarding{d, e} {
		o.toSPVerified()
		o.grant(walkthrough.RoleContributor, o.accountScope())
	}
	for _, o := range []*onboarding{d, e} {
		o.submitStorage() // the probe waits out the role's propagation
		if c := o.wait(30*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
			t.Fatalf("%s/%s: %s", c.State, c.Status(), c.LastError)
		}
		if err := o.api.RegisterWorkspace(ctx, "ws", o.cred.ID); err != nil {
			t.Fatal(err)
		}
	}
	parties := []*isolationParty{
		{name: "B", source: "environment_default", api: h.api(t), account: testenv.DevAccount},
		{name: "C", source: "environment_default", api: h.api(t), account: testenv.DevAccount},
		{name: "D", source: "workspace", api: d.api, account: "custacct1"},
		{name: "E", source: "workspace", api: e.api, account: "custacct1"},
	}
	for _, p := range parties {
		var err error
		if p.creds, err = p.api.Creds(ctx, "ws", "t"); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		want := map[string]string{"B": orgContainer(p.api.Org), "C": orgContainer(p.api.Org), "D": d.container, "E": e.container}[p.name]
		if p.creds.Source != p.source || p.creds.Container != want || p.creds.ContainerURL != blobFrontURL(si, p.account, want) {
			t.Fatalf("%s: creds %+v, want source %s and container %s in %s", p.name, p.creds, p.source, want, p.account)
		}
	}
	if parties[0].creds.Container == parties[1].creds.Container {
		t.Fatalf("B and C share the environment default's container %s", parties[0].creds.Container)
	}

	// The targets: each organization's container, seeded by its owner with its own SAS...
	var targets []isolationTarget
	for _, p := range parties {
		tg := isolationTarget{label: p.name + "'s container", account: p.account, container: p.creds.Container,
			prefix: p.creds.PathPrefix, seed: p.creds.PathPrefix + "seed.txt", owner: p}
		c := sasContainer(t, si, p.creds.ContainerURL, p.creds.SASToken)
		if _, err := c.NewBlockBlobClient(tg.seed).UploadBuffer(ctx, []byte("owned by "+p.name), nil); err != nil {
			t.Fatalf("%s seeds its own container: %v", p.name, err)
		}
		targets = append(targets, tg)
	}
	// ...and, per organization, another container of its account and its container's name
	// in another account, seeded by the accounts' owners.
	extra := map[string][]isolationTarget{}
	for _, p := range parties {
		other := testenv.UniqueName(t, "other")
		for _, tg := range []isolationTarget{
			{label: "another container of " + p.account, account: p.account, container: other},
			{label: p.creds.Container + " in custacct2", account: "custacct2", container: p.creds.Container},
		} {
			if err := si.customer.CreateContainer(ctx, tg.account, tg.container); err != nil {
				t.Fatal(err)
			}
			tg.seed = "seed.txt"
			if _, err := sharedKeyContainer(t, env, tg.account, tg.container).NewBlockBlobClient(tg.seed).UploadBuffer(ctx, []byte("seed"), nil); err != nil {
				t.Fatal(err)
			}
			extra[p.name] = append(extra[p.name], tg)
		}
	}

	type row struct{ sas, target string }
	cells := map[row]map[string][2]string{} // op -> expected, observed
	var order []row
	for _, p := range parties {
		for _, tg := range append(append([]isolationTarget{}, targets...), extra[p.name]...) {
			r := row{p.name, tg.label}
			order = append(order, r)
			cells[r] = map[string][2]string{}
			for _, op := range isolationOps {
				want := "403"
				if tg.owner == p {
					want = "ok"
				}
				got := outcome(tryOp(ctx, t, si, p, tg, op))
				cells[r][op] = [2]string{want, got}
				if !strings.HasPrefix(got, want) {
					t.Errorf("%s's SAS, %s on %s: got %s, want %s", p.name, op, tg.label, got, want)
				}
			}
		}
	}

	// Nothing anyone else did changed a container: each holds its seed and what its owner
	// wrote and deleted again, nothing more.
	for _, tg := range targets {
		if got := blobNames(t, env, tg.account, tg.container); strings.Join(got, ",") != tg.seed {
			t.Errorf("%s holds %v, want only %s", tg.label, got, tg.seed)
		}
	}
	for _, tgs := range extra {
		for _, tg := range tgs {
			if got := blobNames(t, env, tg.account, tg.container); strings.Join(got, ",") != tg.seed {
				t.Errorf("%s (%s) holds %v, want only %s", tg.label, tg.container, got, tg.seed)
			}
		}
	}

	var b strings.Builder
	b.WriteString("isolation matrix (expected -> observed; ok = 2xx):\n\n")
	b.WriteString("| SAS of | source | on | read | write | list | delete |\n|---|---|---|---|---|---|---|\n")
	sources := map[string]string{}
	for _, p := range parties {
		sources[p.name] = p.source + " " + p.account + "/" + p.creds.Container
	}
	for _, r := range order {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.sas, sources[r.sas], r.target)
		for _, op := range isolationOps {
			c := cells[r][op]
			fmt.Fprintf(&b, " %s -> %s |", c[0], c[1])
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
}

// blobNames lists a container with its owner's shared key.
func blobNames(t *testing.T, env testenv.Env, account, name string) []string {
	t.Helper()
	var out []string
	pager := sharedKeyContainer(t, env, account, name).NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Segment.BlobItems {
			out = append(out, *it.Name)
		}
	}
	sort.Strings(out)
	return out
}

// TestEnvironmentDefaultFirstCalls: sixteen concurrent first /creds calls of a new
// organization on the environment default all get a SAS for its one container, which
// works, and the container is created once: the storage proxy in front of Azurite counts
// one Create Container. A warm call creates nothing and fetches no key.
func TestEnvironmentDefaultFirstCalls(t *testing.T) {
	env := testenv.Azurite(t)
	proxy, counted := startFaultProxy(t, env)
	si := startStandIn(t, counted, time.Second)
	h := startHandler(t, counted, si, defaultSettings())
	ctx := context.Background()
	warmUp(t, h)

	api := h.api(t)
	want := orgContainer(api.Org)
	before := proxy.Stats()
	const callers = 16
	got := make([]walkthrough.Creds, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			got[i], errs[i] = api.Creds(ctx, fmt.Sprintf("ws-%d", i), "t")
		})
	}
	close(start)
	wg.Wait()
	blob := proxy.Stats().Sub(before).Services[faultproxy.ServiceBlob]
	if n := blob.Operations["PUT container"]; n != 1 {
		t.Errorf("%d Create Container requests reached Azurite for %d concurrent first calls, want 1 (operations %v)", n, callers, blob.Operations)
	}
	for i, c := range got {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if c.Source != "environment_default" || c.Container != want || c.ContainerURL != blobFrontURL(si, testenv.DevAccount, want) {
			t.Fatalf("call %d: %+v, want container %s", i, c, want)
		}
		useSAS(t, sasContainer(t, si, c.ContainerURL, c.SASToken), c.PathPrefix)
	}

	before = proxy.Stats()
	if _, err := api.Creds(ctx, "ws-0", "t"); err != nil {
		t.Fatal(err)
	}
	if ops := proxy.Stats().Sub(before).Services[faultproxy.ServiceBlob].Operations; len(ops) != 0 {
		t.Errorf("a warm call sent blob requests %v, want none", ops)
	}
}

// warmUp waits until the environment default serves a throw-away organization: the
// managed identity's role on the platform account has propagated and the platform's user
// delegation key is cached.
func warmUp(tb testing.TB, h *handler) {
	tb.Helper()
	api := h.api(tb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := api.Creds(context.Background(), "warm-up", "t")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the environment default never served: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the stand-in's role propagation (1 s)
	}
}

// BenchmarkEnvironmentDefaultCreds measures, in one run on one stack, what an
// organization's first environment-default /creds costs (its container is created)
// against the first /creds of a new workspace of an organization whose container exists
// (the workspace is recorded, no container) and a warm /creds (resolution and key
// cached). The difference between the first two is the container's creation.
//
//	make test PKGS=./internal/e2e/ GOTEST_FLAGS='-run ^$$ -bench EnvironmentDefaultCreds -benchtime 100x'
func BenchmarkEnvironmentDefaultCreds(b *testing.B) {
	env := testenv.Azurite(b)
	si := startStandIn(b, env, time.Second)
	h := startHandler(b, env, si, defaultSettings())
	ctx := context.Background()
	warmUp(b, h)
	call := func(b *testing.B, api *walkthrough.API, ws string) {
		if _, err := api.Creds(ctx, ws, "t"); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("first call of an organization", func(b *testing.B) {
		apis := make([]*walkthrough.API, b.N)
		for i := range apis {
			apis[i] = h.api(b)
		}
		b.ResetTimer()
		for i := range b.N {
			call(b, apis[i], "ws")
		}
	})
	org := h.api(b)
	call(b, org, "ws-warm")
	b.Run("first call of a workspace", func(b *testing.B) {
		names := make([]string, b.N)
		for i := range names {
			names[i] = "ws-" + uuid.NewString()[:8]
		}
		b.ResetTimer()
		for i := range b.N {
			call(b, org, names[i])
		}
	})
	b.Run("warm call", func(b *testing.B) {
		for range b.N {
			call(b, org, "ws-warm")
		}
	})
}
