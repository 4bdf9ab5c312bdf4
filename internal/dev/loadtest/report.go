package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// The names of scenario 2's runs, as reports carry them.
const (
	CredsRun  = "POST /api/org/{ws}/ds/{table}/creds"
	DetailRun = "GET /organizations/{org}/credentials/{id}"
)

// Report is what `loadtest onboard -json` writes. Fields keep their names and meaning from
// one version to the next, so a report of an older build still reads (what it lacks is
// zero); the figures per request and per onboarding are computed from the counts, which
// every version has written.
type Report struct {
	Onboarding OnboardingResult `json:"onboarding"`
	// HandlerCPU is the handler's CPU time over the onboardings, and HandlerPeakRSS its
	// resident high-water mark at their end (zero without the handler's pid).
	HandlerCPU     time.Duration `json:"handler_cpu_ns"`
	HandlerPeakRSS int64         `json:"handler_peak_rss_bytes"`
	// Storage is the storage transactions of the onboardings (nil when not counted).
	Storage *faultproxy.Stats `json:"storage,omitempty"`
	// Steady are scenario 2's measured runs: /creds at each level, then GET credential.
	Steady []SteadyRun `json:"steady,omitempty"`
	// Profiled is the extra /creds run during which the handler's CPU profile was
	// recorded into ProfileFile; its figures include the profiler's own cost.
	Profiled    *SteadyRun `json:"profiled,omitempty"`
	ProfileFile string     `json:"profile_file,omitempty"`
}

// SteadyRun is one closed-loop run of scenario 2.
type SteadyRun struct {
	Name   string `json:"name"`
	Result Result `json:"result"`
	// HandlerCPU is the handler's CPU time over the run, warm-up included.
	HandlerCPU time.Duration `json:"handler_cpu_ns"`
	// Storage is the storage transactions during the run, warm-up included (nil when not
	// counted).
	Storage *faultproxy.Stats `json:"storage,omitempty"`
	// HandlerCPUPerRequest and StoragePerRequest are CPUPerRequest and
	// StoragePerRequest, written for readers of the JSON.
	HandlerCPUPerRequest time.Duration `json:"handler_cpu_per_request_ns,omitempty"`
	StoragePerRequest    *float64      `json:"storage_per_request,omitempty"`
}

// Served is every request the handler answered during the run: the measured ones and
// the warm-up's, over which HandlerCPU and Storage are counted.
func (s SteadyRun) Served() int { return s.Result.Requests + s.Result.WarmupRequests }

// CPUPerRequest is the handler's CPU time per request served; false when the CPU was not
// measured.
func (s SteadyRun) CPUPerRequest() (time.Duration, bool) {
	if s.HandlerCPU <= 0 || s.Served() == 0 {
		return 0, false
	}
	return s.HandlerCPU / time.Duration(s.Served()), true
}

// TransactionsPerRequest is the storage transactions per request served; false when
// they were not counted.
func (s SteadyRun) TransactionsPerRequest() (float64, bool) {
	if s.Storage == nil || s.Served() == 0 {
		return 0, false
	}
	return float64(s.Storage.Requests()) / float64(s.Served()), true
}

// withPerRequest fills the per-request fields written for readers of the JSON.
func (s SteadyRun) withPerRequest() SteadyRun {
	s.HandlerCPUPerRequest, _ = s.CPUPerRequest()
	if t, ok := s.TransactionsPerRequest(); ok {
		s.StoragePerRequest = &t
	}
	return s
}

// AddSteady appends a run to the report, with its per-request figures.
func (r *Report) AddSteady(s SteadyRun) { r.Steady = append(r.Steady, s.withPerRequest()) }

// SetProfiled records the profiled run and its profile file.
func (r *Report) SetProfiled(s SteadyRun, file string) {
	s = s.withPerRequest()
	r.Profiled, r.ProfileFile = &s, file
}

// Run is the steady run name at concurrency c; false when the report has none.
func (r Report) Run(name string, c int) (SteadyRun, bool) {
	for _, s := range r.Steady {
		if s.Name == name && s.Result.Concurrency == c {
			return s, true
		}
	}
	return SteadyRun{}, false
}

// TransactionsPerOnboarding is the storage transactions of scenario 1 per onboarding;
// false when they were not counted.
func (r Report) TransactionsPerOnboarding() (float64, bool) {
	if r.Storage == nil || r.Onboarding.Credentials == 0 {
		return 0, false
	}
	return float64(r.Storage.Requests()) / float64(r.Onboarding.Credentials), true
}

// CPUPerOnboarding is the handler's CPU time of scenario 1 per onboarding; false when it
// was not measured.
func (r Report) CPUPerOnboarding() (time.Duration, bool) {
	if r.HandlerCPU <= 0 || r.Onboarding.Credentials == 0 {
		return 0, false
	}
	return r.HandlerCPU / time.Duration(r.Onboarding.Credentials), true
}

// FetchProfile records a CPU profile of seconds from a net/http/pprof profile URL on
// loopback (…/debug/pprof/profile) and writes it to w.
func FetchProfile(ctx context.Context, client *http.Client, profileURL string, seconds int, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, profileURL+"?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	if err := CheckTarget(ctx, req.URL); err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("CPU profile: %s", describe(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CPU profile: HTTP %d", resp.StatusCode)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	return nil
}
