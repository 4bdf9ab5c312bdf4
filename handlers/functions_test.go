package handlers

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/queue"
)

// The host's naming rules are functionNamePattern and bindingNamePattern (hostfunctions.go).
var (
	// Azure's queue naming rule: 3-63 lowercase letters, digits and single hyphens, starting
	// and ending with a letter or digit.
	queueNamePattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
	// A binding property written %NAME% is the app setting NAME.
	appSettingRef = regexp.MustCompile(`^%([A-Za-z0-9_]+)%$`)
)

const (
	functionsDir = "../functions"
	hostJSONFile = "../host.json"
)

type hostFunction struct {
	name string
	functionJSON
}

// loadFunctions reads every functions/<name>/function.json; a folder without one fails.
func loadFunctions(t *testing.T) []hostFunction {
	t.Helper()
	entries, err := os.ReadDir(functionsDir)
	if err != nil {
		t.Fatalf("read %s: %v", functionsDir, err)
	}
	var out []hostFunction
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("%s: only folders belong in %s", e.Name(), functionsDir)
			continue
		}
		raw, err := os.ReadFile(filepath.Join(functionsDir, e.Name(), "function.json"))
		if err != nil {
			t.Errorf("function %s: %v", e.Name(), err)
			continue
		}
		f := hostFunction{name: e.Name()}
		if err := json.Unmarshal(raw, &f.functionJSON); err != nil {
			t.Errorf("function %s: parse function.json: %v", e.Name(), err)
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		t.Fatalf("no function.json under %s", functionsDir)
	}
	return out
}

func routeKey(method, route string) string { return strings.ToUpper(method) + " " + route }

// trigger returns the function's trigger binding; it fails unless there is exactly one.
func (f hostFunction) trigger(t *testing.T) (functionBinding, bool) {
	t.Helper()
	var triggers []functionBinding
	for _, b := range f.Bindings {
		if strings.HasSuffix(b.Type, "Trigger") {
			triggers = append(triggers, b)
		}
	}
	if len(triggers) != 1 {
		t.Errorf("function %s: %d trigger bindings, want exactly one", f.name, len(triggers))
		return functionBinding{}, false
	}
	return triggers[0], true
}

// TestHostFunctionsGenerated: functions/ holds exactly what HostFunctions generates from
// the route, job and timer tables, byte for byte, so a route, job kind or timer cannot
// reach the binary without reaching the host (or the other way round).
func TestHostFunctionsGenerated(t *testing.T) {
	want, err := HostFunctions()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(functionsDir)
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Name()] = true
		got, err := os.ReadFile(filepath.Join(functionsDir, e.Name(), "function.json"))
		switch def, ok := want[e.Name()]; {
		case !ok:
			stale = append(stale, e.Name()+" is not a function of the tables")
		case err != nil:
			stale = append(stale, e.Name()+": "+err.Error())
		case !bytes.Equal(got, def):
			stale = append(stale, e.Name()+"/function.json differs:\n"+string(got)+"want:\n"+string(def))
		}
	}
	for name := range want {
		if !seen[name] {
			stale = append(stale, name+" is missing")
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		t.Errorf("functions/ is not what the route, job and timer tables generate; run `%s` (go run ./cmd/functions) and commit the result:\n%s",
			generateCommand, strings.Join(stale, "\n"))
	}
}

func TestFunctionDefinitions(t *testing.T) {
	for _, f := range loadFunctions(t) {
		t.Run(f.name, func(t *testing.T) {
			if !functionNamePattern.MatchString(f.name) {
				t.Errorf("folder name %q does not match the host's rule %s", f.name, functionNamePattern)
			}
			for _, b := range f.Bindings {
				if !bindingNamePattern.MatchString(b.Name) {
					t.Errorf("%s binding name %q does not match %s", b.Type, b.Name, bindingNamePattern)
				}
				if b.Direction != "in" && b.Direction != "out" {
					t.Errorf("%s binding %q: direction %q, want in or out", b.Type, b.Name, b.Direction)
				}
			}
			trig, ok := f.trigger(t)
			if !ok {
				return
			}
			if trig.Direction != "in" {
				t.Errorf("trigger direction %q, want in", trig.Direction)
			}
			switch trig.Type {
			case "httpTrigger":
				checkHTTPFunction(t, f, trig)
			case "queueTrigger":
				if !queueNamePattern.MatchString(trig.QueueName) {
					t.Errorf("queueName %q is not a valid queue name", trig.QueueName)
				}
				if len(trig.QueueName)+len("-poison") > 63 {
					t.Errorf("queueName %q leaves no room for the host's -poison suffix", trig.QueueName)
				}
				if trig.Connection != "AzureWebJobsStorage" {
					t.Errorf("connection %q, want AzureWebJobsStorage: the queues live in the backend's own storage account", trig.Connection)
				}
				if len(f.Bindings) != 1 {
					t.Errorf("%d bindings; a queue function has its trigger alone (it answers with no outputs)", len(f.Bindings))
				}
			case "timerTrigger":
				if !appSettingRef.MatchString(trig.Schedule) {
					t.Errorf("schedule %q: want an app setting reference like %%AZCREDS_HEALTH_SCHEDULE%%, so each deployment sets its own", trig.Schedule)
				}
				if trig.RunOnStartup != nil && *trig.RunOnStartup {
					t.Error("runOnStartup is set: the host would sweep at every start and scale-out")
				}
				if len(f.Bindings) != 1 {
					t.Errorf("%d bindings; a timer function has its trigger alone (it answers with no outputs)", len(f.Bindings))
				}
			default:
				t.Errorf("trigger type %q: this test knows httpTrigger, queueTrigger and timerTrigger; teach it the new one", trig.Type)
			}
		})
	}
}

// checkHTTPFunction holds an HTTP function to the shape that enableForwardingHttpRequest
// forwards as the original request: one httpTrigger in, one http out, nothing else.
func checkHTTPFunction(t *testing.T, f hostFunction, trig functionBinding) {
	t.Helper()
	var outs int
	for _, b := range f.Bindings {
		if b.Type == "http" && b.Direction == "out" {
			outs++
		}
	}
	if outs != 1 || len(f.Bindings) != 2 {
		t.Errorf("%d bindings with %d http out; forwarding needs exactly one httpTrigger and one http out", len(f.Bindings), outs)
	}
	if trig.AuthLevel != "anonymous" {
		t.Errorf("authLevel %q, want anonymous: the API authenticates the bearer token itself", trig.AuthLevel)
	}
	if len(trig.Methods) == 0 {
		t.Error("no methods: the host would route every method here")
	}
	for _, m := range trig.Methods {
		if m != strings.ToLower(m) {
			t.Errorf("method %q: write methods in lower case", m)
		}
	}
	switch {
	case trig.Route == "":
		t.Error("no route: the host would use the function name")
	case strings.HasPrefix(trig.Route, "/"):
		t.Errorf("route %q: the host's routes have no leading slash", trig.Route)
	case strings.EqualFold(strings.Split(trig.Route, "/")[0], "admin"):
		t.Errorf("route %q: the host reserves admin/ for its own endpoints", trig.Route)
	}
}

// TestFunctionsMatchRoutes ties the host's functions to the handlers: every HTTP function
// maps to a route of API.Routes(), and every route but "/" (which the host probes by
// itself) has a function. A queue function is invoked as POST /<name>, which the Invoker
// serves: each must be a row of the job table (queue.JobQueues) with the same queue and
// binding name, each row must have its folder, and no HTTP function may take its path.
// Timer functions likewise with queue.Timers.
func TestFunctionsMatchRoutes(t *testing.T) {
	registered := map[string]Route{}
	for _, rt := range apiRoutes() {
		registered[routeKey(rt.Method, hostRoute(rt.Pattern))] = rt
	}
	iv := NewInvoker(nil, slog.New(slog.DiscardHandler))
	invoked := map[string]queue.JobQueue{} // function name -> what the Invoker serves
	for _, fn := range queue.JobQueues {
		invoked[fn.Function] = fn
		if !iv.owns("/" + fn.Function) {
			t.Errorf("the Invoker does not serve POST /%s, the queue function of %s jobs", fn.Function, fn.Kind)
		}
		if _, clash := registered[routeKey(http.MethodPost, fn.Function)]; clash {
			t.Errorf("the API registers POST /%s, the invocation path of queue function %s", fn.Function, fn.Function)
		}
	}
	timers := map[string]queue.Timer{}
	for _, fn := range queue.Timers {
		timers[fn.Function] = fn
		if !iv.owns("/" + fn.Function) {
			t.Errorf("the Invoker does not serve POST /%s, the timer function", fn.Function)
		}
		if _, clash := registered[routeKey(http.MethodPost, fn.Function)]; clash {
			t.Errorf("the API registers POST /%s, the invocation path of timer function %s", fn.Function, fn.Function)
		}
		if _, clash := invoked[fn.Function]; clash {
			t.Errorf("%s is both a queue and a timer function", fn.Function)
		}
	}
	served := map[string]string{} // route key -> function
	queueFunctions := map[string]bool{}
	timerFunctions := map[string]bool{}
	var templates []hostTemplate
	for _, f := range loadFunctions(t) {
		trig, ok := f.trigger(t)
		if !ok {
			continue
		}
		if trig.Type == "timerTrigger" {
			served[routeKey(http.MethodPost, f.name)] = f.name
			timerFunctions[f.name] = true
			fn, ok := timers[f.name]
			switch {
			case !ok:
				t.Errorf("timer function %s: the Invoker serves no POST /%s", f.name, f.name)
			case trig.Name != fn.Binding:
				t.Errorf("timer function %s: binding %q; the Invoker reads Data.%s", f.name, trig.Name, fn.Binding)
			case trig.Schedule != "%"+fn.ScheduleSetting+"%":
				t.Errorf("timer function %s: schedule %q, want the app setting %%%s%%", f.name, trig.Schedule, fn.ScheduleSetting)
			}
			continue
		}
		if trig.Type != "httpTrigger" {
			key := routeKey(http.MethodPost, f.name)
			served[key] = f.name
			queueFunctions[f.name] = true
			fn, ok := invoked[f.name]
			switch {
			case !ok:
				t.Errorf("queue function %s: the Invoker serves no POST /%s", f.name, f.name)
			case trig.QueueName != fn.Queue:
				t.Errorf("queue function %s reads queue %q; the Invoker expects %s jobs from %q", f.name, trig.QueueName, fn.Kind, fn.Queue)
			case trig.Name != fn.Binding:
				t.Errorf("queue function %s: binding %q; the Invoker reads Data.%s", f.name, trig.Name, fn.Binding)
			}
			continue
		}
		for _, m := range trig.Methods {
			key := routeKey(m, trig.Route)
			if _, ok := registered[key]; !ok {
				t.Errorf("function %s serves %s, which Routes() does not register", f.name, key)
			}
			if other, dup := served[key]; dup {
				t.Errorf("functions %s and %s both serve %s", other, f.name, key)
			}
			served[key] = f.name
			templates = append(templates, hostTemplate{function: f.name, method: strings.ToUpper(m), route: trig.Route})
		}
	}
	for key, rt := range registered {
		if rt.Pattern == "/" {
			continue
		}
		if _, ok := served[key]; !ok {
			t.Errorf("route %s %s has no function under %s", rt.Method, rt.Pattern, functionsDir)
		}
	}
	for name := range invoked {
		if !queueFunctions[name] {
			t.Errorf("the Invoker serves POST /%s, but %s/%s has no queueTrigger function", name, functionsDir, name)
		}
	}
	for name := range timers {
		if !timerFunctions[name] {
			t.Errorf("the Invoker serves POST /%s, but %s/%s has no timerTrigger function", name, functionsDir, name)
		}
	}
	for _, tmpl := range templates {
		if _, ok := invoked[strings.ToLower(tmpl.route)]; ok && tmpl.method == http.MethodPost {
			t.Errorf("HTTP function %s takes route %s, the invocation path of a queue function", tmpl.function, tmpl.route)
		}
		if _, ok := timers[strings.ToLower(tmpl.route)]; ok && tmpl.method == http.MethodPost {
			t.Errorf("HTTP function %s takes route %s, the invocation path of a timer function", tmpl.function, tmpl.route)
		}
	}
	checkUnambiguous(t, templates)
}

type hostTemplate struct {
	function, method, route string
}

// checkUnambiguous fails when one request could match two functions. net/http picks the
// most specific pattern, but the host tries its routes in registration order, so
// "things/{id}" next to "things/latest" would depend on the order of the functions.
func checkUnambiguous(t *testing.T, templates []hostTemplate) {
	t.Helper()
	for i, a := range templates {
		for _, b := range templates[i+1:] {
			if a.method == b.method && a.route != b.route && templatesOverlap(a.route, b.route) {
				t.Errorf("functions %s (%s) and %s (%s) can match the same %s request; the host would pick by registration order",
					a.function, a.route, b.function, b.route, a.method)
			}
		}
	}
}

func templatesOverlap(a, b string) bool {
	as, bs := strings.Split(strings.ToLower(a), "/"), strings.Split(strings.ToLower(b), "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		if strings.HasPrefix(x, "{*") || strings.HasPrefix(y, "{*") {
			return true
		}
		if x != y && !strings.HasPrefix(x, "{") && !strings.HasPrefix(y, "{") {
			return false
		}
	}
	return len(as) == len(bs)
}

type hostJSON struct {
	Version         string `json:"version"`
	FunctionTimeout string `json:"functionTimeout"`
	CustomHandler   *struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			WorkingDirectory      *string  `json:"workingDirectory"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHttpRequest bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	ExtensionBundle struct {
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"extensionBundle"`
	Extensions struct {
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
		Queues struct {
			MaxDequeueCount int    `json:"maxDequeueCount"`
			MessageEncoding string `json:"messageEncoding"`
		} `json:"queues"`
	} `json:"extensions"`
	Retry   json.RawMessage `json:"retry"`
	Logging struct {
		LogLevel map[string]string `json:"logLevel"`
	} `json:"logging"`
}

func TestFunctionHostJSON(t *testing.T) {
	raw, err := os.ReadFile(hostJSONFile)
	if err != nil {
		t.Fatal(err)
	}
	var h hostJSON
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("parse %s: %v", hostJSONFile, err)
	}
	if h.Version != "2.0" {
		t.Errorf("version %q, want 2.0", h.Version)
	}
	if h.CustomHandler == nil {
		t.Fatal("no customHandler section")
	}
	d := h.CustomHandler.Description
	if d.DefaultExecutablePath != "handler" {
		t.Errorf("customHandler.description.defaultExecutablePath %q, want handler (the binary at the package root)", d.DefaultExecutablePath)
	}
	if d.WorkingDirectory == nil || *d.WorkingDirectory != "" {
		t.Error(`customHandler.description.workingDirectory: want ""`)
	}
	if len(d.Arguments) != 0 {
		t.Errorf("customHandler.description.arguments %q: the binary serves with no arguments", d.Arguments)
	}
	if !h.CustomHandler.EnableForwardingHttpRequest {
		t.Error("customHandler.enableForwardingHttpRequest: want true, so HTTP functions arrive as the original request")
	}
	if p := h.Extensions.HTTP.RoutePrefix; p == nil || *p != "" {
		t.Error(`extensions.http.routePrefix: want "" (the host's default prefix is api)`)
	}
	if h.ExtensionBundle.ID != "Microsoft.Azure.Functions.ExtensionBundle" || h.ExtensionBundle.Version == "" {
		t.Errorf("extensionBundle %+v: want Microsoft.Azure.Functions.ExtensionBundle with a version range", h.ExtensionBundle)
	}
	if h.Extensions.Queues.MessageEncoding != "base64" {
		t.Errorf("extensions.queues.messageEncoding %q, want base64: the producer base64-encodes its messages", h.Extensions.Queues.MessageEncoding)
	}
	if h.Extensions.Queues.MaxDequeueCount < 1 {
		t.Errorf("extensions.queues.maxDequeueCount %d, want at least 1", h.Extensions.Queues.MaxDequeueCount)
	}
	if h.Retry != nil {
		t.Error("host-level retry is set: queue functions re-enqueue themselves and rely on maxDequeueCount")
	}
	if ft, err := time.Parse(time.TimeOnly, h.FunctionTimeout); err != nil || ft.Hour() == 0 && ft.Minute() == 0 && ft.Second() == 0 {
		t.Errorf("functionTimeout %q, want a positive hh:mm:ss", h.FunctionTimeout)
	}
	if h.Extensions.Queues.MaxDequeueCount != queue.MaxDequeueCount {
		t.Errorf("extensions.queues.maxDequeueCount %d, want %d: the standalone worker and the job runner's last delivery count the same",
			h.Extensions.Queues.MaxDequeueCount, queue.MaxDequeueCount)
	}
}

// TestWriteTimeoutOutlastsTheFunctionTimeout: the server's WriteTimeout is longer than
// host.json's functionTimeout, so a job that runs for as long as the host allows (say
// 100 s of a 2-minute timeout) can still answer its invocation.
func TestWriteTimeoutOutlastsTheFunctionTimeout(t *testing.T) {
	var h hostJSON
	raw, err := os.ReadFile(hostJSONFile)
	if err == nil {
		err = json.Unmarshal(raw, &h)
	}
	if err != nil {
		t.Fatal(err)
	}
	ft, err := time.Parse(time.TimeOnly, h.FunctionTimeout)
	if err != nil {
		t.Fatalf("functionTimeout %q: %v", h.FunctionTimeout, err)
	}
	timeout := time.Duration(ft.Hour())*time.Hour + time.Duration(ft.Minute())*time.Minute + time.Duration(ft.Second())*time.Second
	if WriteTimeout <= timeout || 100*time.Second > timeout {
		t.Errorf("WriteTimeout %s, functionTimeout %s: want a function timeout of at least 100 s and a write timeout beyond it", WriteTimeout, timeout)
	}
}

// TestHostJSONLetsInvocationLogsThrough: the host writes the Logs of a custom handler's
// answer at Information under Function.<name>.User; host.json lets them through for every
// queue and timer function of the job and timer tables (and for nothing unknown), while
// the host's own Function category stays at Warning.
func TestHostJSONLetsInvocationLogsThrough(t *testing.T) {
	var h hostJSON
	raw, err := os.ReadFile(hostJSONFile)
	if err == nil {
		err = json.Unmarshal(raw, &h)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, jq := range queue.JobQueues {
		want["Function."+jq.Function+".User"] = true
	}
	for _, tm := range queue.Timers {
		want["Function."+tm.Function+".User"] = true
	}
	for cat := range want {
		if lvl := h.Logging.LogLevel[cat]; lvl != "Information" {
			t.Errorf("logging.logLevel[%q] = %q, want Information: the invocations' Logs would not reach Application Insights", cat, lvl)
		}
	}
	for cat := range h.Logging.LogLevel {
		if strings.HasSuffix(cat, ".User") && !want[cat] {
			t.Errorf("logging.logLevel[%q] names no function of the job or timer table", cat)
		}
	}
	if lvl := h.Logging.LogLevel["Function"]; lvl != "Warning" {
		t.Errorf("logging.logLevel.Function %q, want Warning: the per-function entries are the exception", lvl)
	}
}
