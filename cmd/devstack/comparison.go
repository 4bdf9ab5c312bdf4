package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/loadtest"
)

// figure is one figure `make compare` reads from each report.
type figure struct {
	group, name string
	// value reads the figure, or says why the report lacks it.
	value func(loadtest.Report) (v float64, missing string)
}

// figures are the comparison's figures: /creds at each of levels (requests a second,
// p50, p99, handler CPU per request), GET credential at getConns (the same, with storage
// transactions per request instead of CPU), and per onboarding the storage transactions
// and handler CPU.
func figures(levels []int, getConns int) []figure {
	var fs []figure
	steady := func(name string, c int, what string) {
		group := fmt.Sprintf("%s, c=%d", what, c)
		from := func(f func(loadtest.SteadyRun) (float64, bool), lacks string) func(loadtest.Report) (float64, string) {
			return func(r loadtest.Report) (float64, string) {
				s, ok := r.Run(name, c)
				if !ok {
					return 0, fmt.Sprintf("no %s run at c=%d", what, c)
				}
				if v, ok := f(s); ok {
					return v, ""
				}
				return 0, fmt.Sprintf("%s at c=%d: %s", what, c, lacks)
			}
		}
		fs = append(fs,
			figure{group, "req/s", from(func(s loadtest.SteadyRun) (float64, bool) { return s.Result.RPS, true }, "")},
			figure{group, "p50 ms", from(func(s loadtest.SteadyRun) (float64, bool) { return ms(s.Result.P50), true }, "")},
			figure{group, "p99 ms", from(func(s loadtest.SteadyRun) (float64, bool) { return ms(s.Result.P99), true }, "")})
		if name == loadtest.CredsRun {
			fs = append(fs, figure{group, "handler CPU µs/request", from(func(s loadtest.SteadyRun) (float64, bool) {
				d, ok := s.CPUPerRequest()
				return float64(d) / float64(time.Microsecond), ok
			}, "no handler CPU measured")})
		} else {
			fs = append(fs, figure{group, "storage transactions/request", from(loadtest.SteadyRun.TransactionsPerRequest,
				"no storage transactions counted")})
		}
	}
	for _, c := range levels {
		steady(loadtest.CredsRun, c, "/creds")
	}
	steady(loadtest.DetailRun, getConns, "GET credential")
	fs = append(fs,
		figure{"onboarding", "storage transactions/onboarding", func(r loadtest.Report) (float64, string) {
			if v, ok := r.TransactionsPerOnboarding(); ok {
				return v, ""
			}
			return 0, "no storage transactions counted in scenario 1"
		}},
		figure{"onboarding", "handler CPU ms/onboarding", func(r loadtest.Report) (float64, string) {
			if d, ok := r.CPUPerOnboarding(); ok {
				return ms(d), ""
			}
			return 0, "no handler CPU measured in scenario 1"
		}})
	return fs
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// stat is one figure over a side's runs: the median and range of the runs that have it.
type stat struct {
	n                int // runs that have the figure
	median, min, max float64
}

func statOf(values []float64) stat {
	if len(values) == 0 {
		return stat{}
	}
	v := slices.Sorted(slices.Values(values))
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{n: len(v), median: med, min: v[0], max: v[len(v)-1]}
}

// row is one figure of the comparison: before, after, and after/before of the medians.
type row struct {
	group, name   string
	before, after stat
	ratio         float64
	hasRatio      bool
}

// comparison is the rows, and what either side lacked.
type comparison struct {
	runs  [2]int // reports before and after
	rows  []row
	notes []string
}

// compareReports reads every figure from each side's reports.
func compareReports(before, after []loadtest.Report, levels []int, getConns int) comparison {
	c := comparison{runs: [2]int{len(before), len(after)}}
	seen := map[string]bool{}
	note := func(s string) {
		if !seen[s] {
			seen[s] = true
			c.notes = append(c.notes, s)
		}
	}
	read := func(side string, reports []loadtest.Report, f figure) stat {
		var vs []float64
		for i, r := range reports {
			v, missing := f.value(r)
			switch {
			case missing == "":
				vs = append(vs, v)
			case len(reports) == 1:
				note(fmt.Sprintf("%s: %s", side, missing))
			default:
				note(fmt.Sprintf("%s run %d: %s", side, i+1, missing))
			}
		}
		return statOf(vs)
	}
	for _, f := range figures(levels, getConns) {
		r := row{group: f.group, name: f.name, before: read("before", before, f), after: read("after", after, f)}
		if r.before.n > 0 && r.after.n > 0 && r.before.median != 0 {
			r.ratio, r.hasRatio = r.after.median/r.before.median, true
		}
		c.rows = append(c.rows, r)
	}
	return c
}

// formatComparison is the comparison as a table, then the notes.
func formatComparison(c comparison) string {
	var b strings.Builder
	cell := func(s stat, runs int) string {
		switch {
		case s.n == 0:
			return "missing"
		case runs > 1:
			return fmt.Sprintf("%s (%s-%s)", num(s.median), num(s.min), num(s.max))
		default:
			return num(s.median)
		}
	}
	fmt.Fprintf(&b, "%-24s %-31s %24s %24s %12s\n", "", "", "before", "after", "after/before")
	last := ""
	for _, r := range c.rows {
		group := r.group
		if group == last {
			group = ""
		}
		last = r.group
		ratio := "-"
		if r.hasRatio {
			ratio = fmt.Sprintf("%.2f", r.ratio)
		}
		fmt.Fprintf(&b, "%-24s %-31s %24s %24s %12s\n", group, r.name, cell(r.before, c.runs[0]), cell(r.after, c.runs[1]), ratio)
	}
	for _, n := range c.notes {
		fmt.Fprintf(&b, "  (%s)\n", n)
	}
	return b.String()
}

// num writes a figure with three significant digits or more.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
