package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"testing"

	"github.com/activeloopai/azcreds/internal/dev/apicheck"
)

// apiCheck holds every answer the tests' HTTP clients receive from the API to
// openapi.json (internal/dev/apicheck): the harness and the raw-request helpers send
// through it. The Functions host's invocation paths are not the API's.
var apiCheck *apicheck.Validator

func TestMain(m *testing.M) {
	inv := NewInvoker(nil, slog.New(slog.DiscardHandler))
	v, err := apicheck.New(openAPIDocument, func(r *http.Request) bool { return inv.owns(r.URL.Path) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	apiCheck = v
	code := m.Run()
	if err := v.Report("handlers"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}
