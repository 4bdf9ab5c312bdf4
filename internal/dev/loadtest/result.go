package loadtest

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ParseLevels reads connection counts written "1,16,64", each from 1 to ConcurrencyLimit.
func ParseLevels(s string) ([]int, error) {
	var levels []int
	for f := range strings.SplitSeq(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > ConcurrencyLimit {
			return nil, fmt.Errorf("%q: want comma-separated connection counts from 1 to %d", s, ConcurrencyLimit)
		}
		levels = append(levels, c)
	}
	return levels, nil
}

// Result is what one run measured. Warm-up requests are counted in WarmupRequests only.
// Every measured request is a response (in StatusCounts) or a transport error, so
// Requests is the sum of StatusCounts plus TransportErrors. Percentiles are over the
// responses, whatever their status; transport errors have no latency.
type Result struct {
	Concurrency int `json:"concurrency"`
	// Requests is the number of measured requests sent and finished.
	Requests int `json:"requests"`
	// Errors is non-2xx responses plus transport errors.
	Errors int `json:"errors"`
	// TransportErrors are requests without a complete response: refused connection,
	// timeout, reset, body cut short.
	TransportErrors int `json:"transport_errors"`
	// ErrorSample is the text of one transport error, without the request URL.
	ErrorSample string `json:"error_sample,omitempty"`
	// RPS is Requests per second of Elapsed.
	RPS float64 `json:"rps"`
	// P50, P90, P99 and Max are exact nearest-rank latencies, send to last body byte.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Elapsed is the measured phase, from the first request sent to the last answered.
	Elapsed        time.Duration `json:"elapsed_ns"`
	WarmupRequests int           `json:"warmup_requests"`
	StatusCounts   map[int]int   `json:"status_counts"`
}

// String is r on one line, for logs.
func (r Result) String() string {
	return fmt.Sprintf("c=%d requests=%d rps=%.1f p50=%s p90=%s p99=%s max=%s errors=%d elapsed=%s",
		r.Concurrency, r.Requests, r.RPS, r.P50, r.P90, r.P99, r.Max, r.Errors, r.Elapsed.Round(time.Millisecond))
}

// TableHeader names the columns of TableRow. Latencies are in milliseconds.
func TableHeader() string {
	return fmt.Sprintf("%6s %10s %11s %10s %10s %10s %10s %8s",
		"c", "requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors")
}

// TableRow is r in fixed-width columns, so rows printed as levels finish line up under
// TableHeader.
func (r Result) TableRow() string {
	return fmt.Sprintf("%6d %10d %11.1f %10.3f %10.3f %10.3f %10.3f %8d",
		r.Concurrency, r.Requests, r.RPS, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.Errors)
}

// WriteTable writes TableHeader and a TableRow per result.
func WriteTable(w io.Writer, results []Result) error {
	if _, err := fmt.Fprintln(w, TableHeader()); err != nil {
		return err
	}
	for _, r := range results {
		if _, err := fmt.Fprintln(w, r.TableRow()); err != nil {
			return err
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
