package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// fakeHost plays the Azure Functions host for a handler that serves the host's invocations
// (AZCREDS_LOCAL_INVOCATIONS: the same invoker FUNCTIONS_CUSTOMHANDLER_PORT mounts, on the
// local stack's listener): it takes messages off the queues and invokes the queue functions
// with the host's payload, every message twice and in a different shape each time, and
// deletes a message once an invocation answered 200.
type fakeHost struct {
	t       *testing.T
	url     string
	queues  map[string]*azqueue.QueueClient // function name -> queue
	mu      sync.Mutex
	sent    map[string][]string // function -> message JSON delivered
	invoked int
}

var shapes = []func(msg string) any{
	func(msg string) any { return json.RawMessage(msg) },                 // the message as an object
	func(msg string) any { return msg },                                  // a JSON string holding it
	func(msg string) any { b, _ := json.Marshal(msg); return string(b) }, // quoted twice
}

func (h *fakeHost) invoke(function, msg string, shape, dequeueCount int) int {
	payload := map[string]any{
		"Data": map[string]any{"job": shapes[shape%len(shapes)](msg)},
		"Metadata": map[string]any{"DequeueCount": dequeueCount, "Id": fmt.Sprint(time.Now().UnixNano()),
			"InsertionTime": time.Now().UTC(), "sys": map[string]any{"MethodName": function, "UtcNow": time.Now().UTC()}},
	}
	body, _ := json.Marshal(payload)
	resp, err := http.Post(h.url+"/"+function, "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Errorf("invoke %s: %v", function, err)
		return 0
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var answer struct {
		Outputs     map[string]any
		Logs        []string
		ReturnValue any
	}
	if err := json.Unmarshal(out, &answer); err != nil || answer.Outputs == nil {
		h.t.Errorf("invoke %s: answer %s is not the host's response shape", function, out)
	}
	return resp.StatusCode
}

func (h *fakeHost) run(ctx context.Context) {
	for ctx.Err() == nil {
		idle := true
		for function, q := range h.queues {
			n, vis := int32(16), int32(30)
			resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n, VisibilityTimeout: &vis})
			if err != nil {
				continue
			}
			for _, m := range resp.Messages {
				idle = false
				msg, err := base64.StdEncoding.DecodeString(*m.MessageText)
				if err != nil {
					h.t.Errorf("message is not base64: %v", err)
					continue
				}
				h.mu.Lock()
				h.invoked++
				shape := h.invoked
				h.sent[function] = append(h.sent[function], string(msg))
				h.mu.Unlock()
				first := h.invoke(function, string(msg), shape, 1)
				second := h.invoke(function, string(msg), shape+1, 2) // at-least-once: again
				if first == http.StatusOK && second == http.StatusOK {
					_, _ = q.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil)
				}
			}
		}
		if idle {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// TestFunctionsHostProtocol runs a whole onboarding with the handler under a fake
// Functions host that delivers every queue message twice, in the host's payload shapes;
// then it redelivers the first window's messages after the window was restarted. The
// events prove no transition happened twice.
func TestFunctionsHostProtocol(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	s := defaultSettings()
	s.hostInvocations = true
	h := startHandler(t, env, si, s)

	qsvc, err := azqueue.NewServiceClientFromConnectionString(env.ConnectionString(s.storageAccount), nil)
	if err != nil {
		t.Fatal(err)
	}
	host := &fakeHost{t: t, url: h.url, sent: map[string][]string{}, queues: map[string]*azqueue.QueueClient{
		"sp-poll": qsvc.NewQueueClient(h.queuePrefix + "sppoll"), "access-probe": qsvc.NewQueueClient(h.queuePrefix + "accessprobe"),
		"app-cleanup": qsvc.NewQueueClient(h.queuePrefix + "appcleanup")}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); host.run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	o := newOnboarding(t, h, si, "custacct1", true)
	o.submitTenant(tenantA) // not installed yet: a few polls go by
	o.wait(15*time.Second, func(c walkthrough.Credential) bool { return c.Progress != nil && c.Progress.Attempts >= 2 })
	o.submitTenant(tenantA) // restart the window: generation 2
	o.install(tenantA)
	if c := o.wait(15*time.Second, walkthrough.InState("sp_verified", "draft")); c.State != "sp_verified" {
		t.Fatalf("state %s: %s", c.State, c.LastError)
	}
	o.grant(walkthrough.RoleContributor, o.accountScope())
	time.Sleep(1500 * time.Millisecond) // propagation
	o.submitStorage()
	if c := o.wait(20*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
		t.Fatalf("state %s/%s: %s", c.State, c.Status(), c.LastError)
	}
	// Late deliveries of every message seen, the first window's included.
	host.mu.Lock()
	late := map[string][]string{}
	for f, msgs := range host.sent {
		late[f] = append([]string(nil), msgs...)
	}
	host.mu.Unlock()
	for f, msgs := range late {
		for i, m := range msgs {
			if status := host.invoke(f, m, i, 3); status != http.StatusOK {
				t.Errorf("late delivery to %s answered %d", f, status)
			}
		}
	}
	want := []string{">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_pending:submit_tenant",
		"sp_pending>sp_verified:sp_found", "sp_verified>access_pending:submit_storage", "access_pending>verified:access_confirmed"}
	if diff := cmp.Diff(want, o.causes()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if host.invoked < 4 {
		t.Fatalf("only %d messages went through the fake host", host.invoked)
	}
	t.Logf("%d messages, each delivered twice and once more late", host.invoked)
}
