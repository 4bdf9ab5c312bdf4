package credentialtest

import (
	"context"
	"sync"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Found is one answer of the Finder: the service principal's object id, or an error.
type Found struct {
	ObjectID string
	Err      error
}

// Finder is a credential.Finder that answers from a script, one answer per call,
// repeating the last; with no script, the service principal is not there yet.
type Finder struct {
	mu     sync.Mutex
	script []Found
	calls  int
}

var _ credential.Finder = (*Finder)(nil)

// Script replaces the answers still to come.
func (f *Finder) Script(answers ...Found) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script, f.calls = answers, 0
}

// FindServicePrincipal gives the script's next answer.
func (f *Finder) FindServicePrincipal(ctx context.Context, tenantID, appID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.script) == 0 {
		return "", credential.ErrSPNotFound
	}
	a := f.script[min(f.calls, len(f.script)-1)]
	f.calls++
	return a.ObjectID, a.Err
}

// Calls is how often FindServicePrincipal was called since the last Script.
func (f *Finder) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
