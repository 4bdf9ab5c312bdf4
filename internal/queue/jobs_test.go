package queue

import (
	"encoding/base64"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

var (
	// Azure's queue naming rule: 3-63 lowercase letters, digits and single hyphens.
	queueName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
	// The Functions host's rules for function (folder) and binding names.
	functionName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,127}$`)
	bindingName  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]*$`)
)

// TestJobTableKeepsDeployedNames: the queues, functions and bindings that deployments and
// queued messages already use keep their names. A new row may be added; these may not change.
func TestJobTableKeepsDeployedNames(t *testing.T) {
	deployed := []JobQueue{
		{Kind: "sp_poll", Queue: "sppoll", Function: "sp-poll", Binding: "job"},
		{Kind: "access_probe", Queue: "accessprobe", Function: "access-probe", Binding: "job"},
		{Kind: "app_cleanup", Queue: "appcleanup", Function: "app-cleanup", Binding: "job"},
		{Kind: "health_probe", Queue: "healthprobe", Function: "health-probe", Binding: "job"},
	}
	for _, want := range deployed {
		if got, ok := Of(want.Kind); !ok || got != want {
			t.Errorf("job kind %s: row %+v (%v), want %+v", want.Kind, got, ok, want)
		}
	}
	want := Timer{Function: "health-sweep", Binding: "timer", ScheduleSetting: "AZCREDS_HEALTH_SCHEDULE"}
	if HealthSweep != want || !slices.Contains(Timers, want) {
		t.Errorf("health sweep timer %+v (in Timers: %v), want %+v", HealthSweep, slices.Contains(Timers, want), want)
	}
}

// TestJobTableRows: each row names a valid queue, function and binding, no two rows share
// a kind, queue or function, and no timer takes a queue function's name.
func TestJobTableRows(t *testing.T) {
	kinds, queues, functions := map[credential.JobKind]bool{}, map[string]bool{}, map[string]bool{}
	for _, jq := range JobQueues {
		if kinds[jq.Kind] || queues[jq.Queue] || functions[jq.Function] {
			t.Errorf("row %+v repeats a kind, queue or function of another row", jq)
		}
		kinds[jq.Kind], queues[jq.Queue], functions[jq.Function] = true, true, true
		if !queueName.MatchString(jq.Queue + PoisonSuffix) {
			t.Errorf("%s: queue %q, with the host's %s, is not a valid queue name", jq.Kind, jq.Queue, PoisonSuffix)
		}
		if !functionName.MatchString(jq.Function) || !bindingName.MatchString(jq.Binding) {
			t.Errorf("%s: function %q or binding %q breaks the host's naming rules", jq.Kind, jq.Function, jq.Binding)
		}
	}
	for _, tm := range Timers {
		if functions[tm.Function] || !functionName.MatchString(tm.Function) || !bindingName.MatchString(tm.Binding) {
			t.Errorf("timer %+v: its function name is taken or breaks the host's naming rules", tm)
		}
		functions[tm.Function] = true
	}
}

// TestEveryDomainJobKindHasARow reads the domain's JobKind constants from its source: a
// kind the domain can schedule but the table lacks would fail at its first Schedule.
func TestEveryDomainJobKindHasARow(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "credential", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var declared []credential.JobKind
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "JobKind" {
					continue
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						declared = append(declared, credential.JobKind(s))
					}
				}
			}
		}
	}
	if len(declared) < len(JobQueues) {
		t.Fatalf("found %d JobKind constants in internal/credential (%v), fewer than the table's %d rows", len(declared), declared, len(JobQueues))
	}
	for _, k := range declared {
		if _, ok := Of(k); !ok {
			t.Errorf("the domain declares job kind %q, which has no row in JobQueues", k)
		}
	}
}

// TestEncodeKeepsWireFormat: a job encodes to the very bytes earlier versions queued, so
// messages written before an upgrade and after it are the same.
func TestEncodeKeepsWireFormat(t *testing.T) {
	job := credential.Job{Kind: credential.JobSPPoll, OrgID: "org-a", CredentialID: "c1", Generation: 3, Attempt: 2,
		Deadline: time.Date(2026, 11, 23, 12, 10, 0, 0, time.FixedZone("", 3600)), Delivery: 4}
	const want = `{"kind":"sp_poll","org_id":"org-a","credential_id":"c1","generation":3,"deadline":"2026-11-23T11:10:00Z","attempt":2}`
	body, err := Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := base64.StdEncoding.DecodeString(body); string(got) != want || body != base64.StdEncoding.EncodeToString([]byte(want)) {
		t.Errorf("Encode = %s (%s), want base64 of %s", body, got, want)
	}
}
