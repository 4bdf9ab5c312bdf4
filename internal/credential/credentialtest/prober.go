package credentialtest

import (
	"context"
	"slices"
	"sync"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Prober is a credential.Prober that answers from a script, one report per probe,
// repeating the last (with no script, every check passes), records what it was asked,
// and runs During, when set, inside each probe: a write racing the probe.
type Prober struct {
	mu      sync.Mutex
	script  []credential.ProbeReport
	targets []credential.ProbeTarget
	during  func()
}

var _ credential.Prober = (*Prober)(nil)

// Script replaces the reports still to come and forgets the probes made.
func (p *Prober) Script(reports ...credential.ProbeReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script, p.targets = reports, nil
}

// During has fn run inside every probe (nil: nothing).
func (p *Prober) During(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.during = fn
}

// Probe gives the script's next report.
func (p *Prober) Probe(ctx context.Context, t credential.ProbeTarget) credential.ProbeReport {
	p.mu.Lock()
	r := Report("pass", "pass", "pass", "pass")
	if len(p.script) > 0 {
		r = p.script[min(len(p.targets), len(p.script)-1)]
	}
	p.targets = append(p.targets, t)
	during := p.during
	p.mu.Unlock()
	if during != nil {
		during()
	}
	return r
}

// Targets lists what was probed since the last Script, in order.
func (p *Prober) Targets() []credential.ProbeTarget {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.targets)
}

// Report is a probe report of the four checks in their order, each "pass", "skip" or
// "403" (denied: AuthorizationPermissionMismatch); fewer results, fewer checks.
func Report(results ...string) credential.ProbeReport {
	names := []string{credential.CheckUserDelegationKey, credential.CheckWrite, credential.CheckListRead, credential.CheckDelete}
	var r credential.ProbeReport
	for i, res := range results {
		c := credential.CheckResult{Name: names[i], Result: credential.ResultPass}
		switch res {
		case "403":
			c = credential.CheckResult{Name: names[i], Result: credential.ResultFail, Status: 403,
				Code: "AuthorizationPermissionMismatch", RequestID: "st-req"}
		case "skip":
			c.Result = credential.ResultSkip
		}
		r.Checks = append(r.Checks, c)
	}
	return r
}
