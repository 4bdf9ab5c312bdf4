package handlers

//go:generate go run ../cmd/functions -dir ../functions

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/activeloopai/azcreds/internal/queue"
)

// generateCommand rewrites functions/ from HostFunctions; a test fails, naming it, when the
// committed files differ.
const generateCommand = "make functions"

// The Functions host's naming rules: a function is its folder's name, and a binding's
// name is the key of its data in an invocation.
var (
	functionNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,127}$`)
	bindingNamePattern  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]*$`)
)

// The bindings of every HTTP function: with enableForwardingHttpRequest (host.json) the
// host forwards a function of exactly one httpTrigger and one http output as the original
// request.
const (
	httpRequestBinding  = "req"
	httpResponseBinding = "res"
	// httpAuthLevel lets every request through the host: the API checks the bearer token
	// itself (Route.Public says which routes need none).
	httpAuthLevel = "anonymous"
)

// functionJSON is the function.json of one function.
type functionJSON struct {
	Bindings []functionBinding `json:"bindings"`
}

// functionBinding is one binding of a function.json, its fields in the order the host's
// documentation writes them.
type functionBinding struct {
	Type       string   `json:"type"`
	Direction  string   `json:"direction"`
	Name       string   `json:"name"`
	AuthLevel  string   `json:"authLevel,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	Route      string   `json:"route,omitempty"`
	QueueName  string   `json:"queueName,omitempty"`
	Connection string   `json:"connection,omitempty"`
	Schedule   string   `json:"schedule,omitempty"`
	// RunOnStartup would sweep at every start and scale-out of the app, not on schedule;
	// UseMonitor has the host record the schedule's status so a missed tick runs late.
	RunOnStartup *bool `json:"runOnStartup,omitempty"`
	UseMonitor   *bool `json:"useMonitor,omitempty"`
}

var multiWildcard = regexp.MustCompile(`\{([^{}]+)\.\.\.\}`)

// hostRoute turns a net/http pattern path into the host's route template: no leading
// slash, "{name...}" as the catch-all "{*name}", no end anchor "{$}".
func hostRoute(pattern string) string {
	p := strings.TrimPrefix(strings.TrimSuffix(pattern, "{$}"), "/")
	return multiWildcard.ReplaceAllString(p, "{*$1}")
}

// HostFunctions returns the function.json of every function the Functions host runs, by
// function (folder) name: one per route of the API but "/", one per row of the job table
// (queue.JobQueues) and one per timer (queue.Timers). cmd/functions writes them to
// functions/; nothing else is written there by hand.
func HostFunctions() (map[string][]byte, error) {
	defs := map[string]functionJSON{}
	add := func(name string, def functionJSON) error {
		if !functionNamePattern.MatchString(name) {
			return fmt.Errorf("function name %q does not match the host's rule %s", name, functionNamePattern)
		}
		if _, dup := defs[name]; dup {
			return fmt.Errorf("two functions are named %s", name)
		}
		for _, b := range def.Bindings {
			if !bindingNamePattern.MatchString(b.Name) {
				return fmt.Errorf("function %s: binding name %q does not match the host's rule %s", name, b.Name, bindingNamePattern)
			}
		}
		defs[name] = def
		return nil
	}
	for _, rt := range New(nil, nil, nil, nil, slog.New(slog.DiscardHandler)).Routes() {
		if rt.Function == "" {
			if rt.Pattern != "/" {
				return nil, fmt.Errorf("route %s %s names no function", rt.Method, rt.Pattern)
			}
			continue
		}
		err := add(rt.Function, functionJSON{Bindings: []functionBinding{
			{Type: "httpTrigger", Direction: "in", Name: httpRequestBinding, AuthLevel: httpAuthLevel,
				Methods: []string{strings.ToLower(rt.Method)}, Route: hostRoute(rt.Pattern)},
			{Type: "http", Direction: "out", Name: httpResponseBinding},
		}})
		if err != nil {
			return nil, err
		}
	}
	for _, jq := range queue.JobQueues {
		err := add(jq.Function, functionJSON{Bindings: []functionBinding{
			{Type: "queueTrigger", Direction: "in", Name: jq.Binding, QueueName: jq.Queue, Connection: queue.StorageConnection},
		}})
		if err != nil {
			return nil, err
		}
	}
	for _, tm := range queue.Timers {
		err := add(tm.Function, functionJSON{Bindings: []functionBinding{
			{Type: "timerTrigger", Direction: "in", Name: tm.Binding, Schedule: "%" + tm.ScheduleSetting + "%",
				RunOnStartup: new(false), UseMonitor: new(true)},
		}})
		if err != nil {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(defs))
	for name, def := range defs {
		b, err := json.MarshalIndent(def, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
		out[name] = append(b, '\n')
	}
	return out, nil
}
