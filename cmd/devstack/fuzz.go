package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// fuzz is `make fuzz`: every fuzz target of PKGS (default ./...) for FUZZTIME (default 1m)
// each.
func fuzz(ctx context.Context, d *dev, args []string) error {
	return d.fuzzAll(ctx, strings.Fields(envOr("PKGS", "./...")), envOr("FUZZTIME", "1m"), []string{"GOFLAGS=" + stack.GoFlags(os.Getenv("GOFLAGS"))})
}

var (
	fuzzFunc     = regexp.MustCompile(`(?m)^func Fuzz[A-Za-z0-9_]*\(`)
	fuzzProgress = regexp.MustCompile(`(?m)^fuzz: elapsed: [^,]*, (.*)$`)
	fuzzInput    = regexp.MustCompile(`testdata/fuzz/[^ \n]+`)
	// deadlineLine is how Go 1.26's coordinator reports a duration FUZZTIME running out
	// under load, with no failing input (go.dev/issue/75804): nothing was found.
	deadlineLine = regexp.MustCompile(`(?m)^    context deadline exceeded$`)
)

// fuzzAll finds every fuzz target of pkgs (as `go test -list` names them: a build tag or a
// typo in a signature would hide one from a search of the source alone) and fuzzes each
// for fuzztime, one at a time (a fuzzer keeps every core busy). It prints a line per
// target with go's own figures and fails when a target found a failing input: go has then
// written it to <package>/testdata/fuzz/<Target>/, where it stays as a test case.
func (d *dev) fuzzAll(ctx context.Context, pkgs []string, fuzztime string, env []string) error {
	listed, err := d.goOutput(ctx, env, append([]string{"list", "-f",
		`{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}`}, pkgs...)...)
	if err != nil {
		return err
	}
	module, err := d.goOutput(ctx, env, "list", "-m")
	if err != nil {
		return err
	}
	module = strings.TrimSpace(module)
	type target struct{ pkg, name string }
	var targets []target
	for _, line := range strings.Split(strings.TrimSpace(listed), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !declaresFuzz(f[1], f[2:]) {
			continue
		}
		names, err := d.goOutput(ctx, env, "test", "-list", "^Fuzz", "-run", "^$", f[0])
		if err != nil {
			return err
		}
		for _, n := range strings.Fields(names) {
			if strings.HasPrefix(n, "Fuzz") {
				targets = append(targets, target{f[0], n})
			}
		}
	}
	if len(targets) == 0 {
		say("no fuzz targets in %s", strings.Join(pkgs, " "))
		return nil
	}
	say("fuzzing %d targets for %s each", len(targets), fuzztime)
	var failed []string
	began := time.Now()
	for _, t := range targets {
		log := filepath.Join(d.files.LogDir(), "fuzz-"+t.name+".log")
		if err := truncate(log); err != nil {
			return err
		}
		start := time.Now()
		p, err := d.launcher.Start(stack.Command{Name: "fuzz " + t.name, Path: "go", Dir: d.root(), Env: env, Log: log,
			Args: []string{"test", "-run=^$", "-fuzz=^" + t.name + "$", "-fuzztime=" + fuzztime, t.pkg}})
		if err != nil {
			return err
		}
		select {
		case <-p.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		runErr := p.Wait()
		out, _ := os.ReadFile(log)
		figures := ""
		if m := fuzzProgress.FindAllSubmatch(out, -1); len(m) > 0 {
			figures = string(m[len(m)-1][1])
		}
		short := strings.TrimPrefix(t.pkg, module)
		if short == "" {
			short = "."
		}
		took := int(time.Since(start).Seconds())
		switch {
		case runErr == nil:
			say("%-28s %-22s ok    %3d s  %s", t.name, short, took, figures)
		case deadlineLine.Match(out) && !fuzzInput.Match(out):
			say("%-28s %-22s ok    %3d s  %s (ended by go's fuzztime race, go.dev/issue/75804; no input)", t.name, short, took, figures)
		default:
			say("%-28s %-22s FAIL  %3d s  %s%s", t.name, short, took, figures, p.LogTail(40))
			if input := fuzzInput.Find(out); input != nil {
				dir, _ := d.goOutput(ctx, env, "list", "-f", "{{.Dir}}", t.pkg)
				say("%s: the failing input is %s; go test runs it as a test case from now on (go test -run '%s/%s' %s)",
					t.name, filepath.Join(d.rel(strings.TrimSpace(dir)), string(input)), t.name, filepath.Base(string(input)), t.pkg)
			}
			failed = append(failed, t.name)
		}
	}
	say("fuzzing: %s for %d targets (logs: %s)", time.Since(began).Round(time.Second), len(targets), d.rel(filepath.Join(d.files.LogDir(), "fuzz-*.log")))
	if len(failed) > 0 {
		return &failure{status: 1, msg: "fuzzing found failing inputs in: " + strings.Join(failed, " ")}
	}
	return nil
}

// declaresFuzz reports whether one of the test files in dir declares a fuzz target.
func declaresFuzz(dir string, files []string) bool {
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil && fuzzFunc.Match(b) {
			return true
		}
	}
	return false
}
