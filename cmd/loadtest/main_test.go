package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/loadtest"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-url", "http://127.0.0.1:7071/x", "-c", "1, 16,64", "-H", "X-A: 1", "-H", "x-a:2",
		"-H", "Authorization: Bearer a:b", "-body", `{"k":"v"}`, "-d", "3s", "-n", "500", "-warmup", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.levels, []int{1, 16, 64}) || o.duration != 3*time.Second || o.requests != 500 || o.warmup != 0 {
		t.Errorf("options %+v", o)
	}
	if !slices.Equal(o.header.Values("X-A"), []string{"1", "2"}) || o.header.Get("Authorization") != "Bearer a:b" {
		t.Errorf("headers %v", o.header)
	}
	// A body makes the request a JSON POST unless the flags say otherwise.
	if o.method != http.MethodPost || o.header.Get("Content-Type") != "application/json" {
		t.Errorf("method %s, content type %q", o.method, o.header.Get("Content-Type"))
	}
	o, err = parseFlags([]string{"-url", "http://localhost/", "-method", "PUT", "-H", "Content-Type: text/plain", "-body", "x"}, io.Discard)
	if err != nil || o.method != "PUT" || o.header.Get("Content-Type") != "text/plain" {
		t.Errorf("explicit method and type: %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"-url", "http://localhost/"}, io.Discard)
	if err != nil || o.method != "GET" || !slices.Equal(o.levels, []int{1}) || o.duration != 10*time.Second ||
		o.requests != loadtest.DefaultMaxRequests || o.warmup != 2*time.Second || o.json {
		t.Errorf("defaults: %+v, %v", o, err)
	}

	for _, args := range [][]string{
		{},
		{"-url", "http://localhost/", "-c", "0"},
		{"-url", "http://localhost/", "-c", "1,,2"},
		{"-url", "http://localhost/", "-c", "two"},
		{"-url", "http://localhost/", "-c", "5000"},
		{"-url", "http://localhost/", "-H", "secret-token"},
		{"-url", "http://localhost/", "-H", ": v"},
		{"-url", "http://localhost/", "-d", "0s"},
		{"-url", "http://localhost/", "-n", "-1"},
		{"-url", "http://localhost/", "-warmup", "-1s"},
		{"-url", "http://localhost/", "extra"},
	} {
		var out bytes.Buffer
		if _, err := parseFlags(args, &out); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		} else if strings.Contains(err.Error()+out.String(), "secret-token") {
			t.Errorf("error repeats the header value: %v", err)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestRunLevels(t *testing.T) {
	var n atomic.Int64
	var mu sync.Mutex
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("X-Test") != "yes" || r.Header.Get("Content-Type") != "application/json" || string(body) != `{"a":1}` {
			mu.Lock()
			bad = append(bad, r.Method+" "+string(body))
			mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)

	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", srv.URL, "-c", "1,3", "-n", "30", "-warmup", "0",
		"-H", "X-Test: yes", "-body", `{"a":1}`, "-json"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var results []loadtest.Result
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout.String())
	}
	if len(results) != 2 || results[0].Concurrency != 1 || results[1].Concurrency != 3 {
		t.Fatalf("results %v", results)
	}
	for _, r := range results {
		if r.Requests != 30 || r.Errors != 0 || r.StatusCounts[200] != 30 || r.P50 <= 0 {
			t.Errorf("result %v", r)
		}
	}
	if n.Load() != 60 || len(bad) != 0 {
		t.Errorf("server saw %d requests, wrong ones %q", n.Load(), bad)
	}
	// With -json the table goes to stderr: a header and a line per level.
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[0], "p99_ms") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestRunTableAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"-url", srv.URL, "-n", "5", "-warmup", "0"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || strings.Fields(lines[1])[0] != "1" || strings.Fields(lines[1])[7] != "5" {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "5×503") {
		t.Errorf("stderr does not explain the errors:\n%s", stderr.String())
	}
}

func TestRunRefusesRemote(t *testing.T) {
	for _, target := range []string{"http://10.0.0.1/", "http://192.168.1.1:7071/", "http://[2001:db8::1]/"} {
		var stdout bytes.Buffer
		err := run(t.Context(), []string{"-url", target, "-warmup", "0"}, &stdout, io.Discard)
		if !errors.Is(err, loadtest.ErrNotLoopback) {
			t.Errorf("%s: err = %v, want ErrNotLoopback", target, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: printed %q", target, stdout.String())
		}
	}
}
