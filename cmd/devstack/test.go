package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/apicheck"
	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// msgraphPackages are the two packages that link msgraph-sdk-go: its thin adapter, with no
// concurrency of its own, and the main package, which has no tests but is built. Under
// -race they run without the race detector: instrumenting msgraph-sdk-go would compile it
// a second time, minutes on 2 cores, for code the race detector cannot improve.
var msgraphPackages = regexp.MustCompile(`^github\.com/activeloopai/azcreds(/internal/azure/graph)?$`)

// test is `make test`: a throw-away Azurite on AZCREDS_TEST_PORT_BASE (default 10100-10102)
// with its data under .local/, then gofmt, go mod tidy -diff and go vet, go test against
// it, and every fuzz target. Knobs, from the environment:
//
//	GOTEST_FLAGS  flags for go test (default -race -count=1)
//	PKGS          packages (default ./...)
//	FUZZTIME      per fuzz target (default 10000x executions; 0 skips fuzzing, as -run does)
//
// Everything builds with -trimpath, as `make package` builds, and whatever does not run
// under the race detector (which needs cgo) with CGO_ENABLED=0: both are part of every
// compilation's key, so one setting means msgraph-sdk-go is compiled once, not twice. It
// fails with go test's status, or with the first check's that failed.
func test(ctx context.Context, d *dev, args []string) error {
	flags := strings.Fields(envOr("GOTEST_FLAGS", "-race -count=1"))
	pkgs := strings.Fields(envOr("PKGS", "./..."))
	fuzztime := envOr("FUZZTIME", "10000x")
	base, err := portBase("AZCREDS_TEST_PORT_BASE", stack.DefaultTestPortBase)
	if err != nil {
		return err
	}
	if err := d.ensureKeys(); err != nil {
		return err
	}
	if slices.ContainsFunc(pkgs, func(p string) bool { return p == "./..." || strings.Contains(p, "e2e") }) {
		d.ensureBrowser(ctx)
	}
	removeStaleTestData(d.files.Local())
	data, err := os.MkdirTemp(d.files.Local(), "test-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return err
	}
	d.cleanups = append(d.cleanups, func() { os.RemoveAll(data) })
	az := stack.NewAzurite(d.files, stack.PortsFrom(base), filepath.Join(data, "azurite"), filepath.Join(d.files.LogDir(), "azurite-test.log"))
	if err := truncate(az.Log); err != nil {
		return err
	}
	if err := stack.RequireFree(stack.NamedPort{Name: "Azurite of make test", Port: az.Blob},
		stack.NamedPort{Name: "Azurite of make test", Port: az.Queue}, stack.NamedPort{Name: "Azurite of make test", Port: az.Table}); err != nil {
		return fmt.Errorf("%w\n(make test AZCREDS_TEST_PORT_BASE=<port> runs it on other ports)", err)
	}
	say("starting Azurite on https://127.0.0.1:%d-%d (log: %s)", az.Blob, az.Table, d.rel(az.Log))
	if err := az.Start(ctx, d.launcher); err != nil {
		return err
	}
	build := stack.BuildEnv(os.Getenv("GOFLAGS")) // CGO_ENABLED=0, GOFLAGS with -trimpath
	tally := filepath.Join(data, "apicheck")
	if err := os.MkdirAll(tally, 0o755); err != nil {
		return err
	}
	env := append(stack.TestEnv(az), "GOFLAGS="+stack.GoFlags(os.Getenv("GOFLAGS")), apicheck.TallyDirEnv+"="+tally)

	var checks []error
	start := time.Now()
	if err := d.gofmt(ctx, pkgs); err != nil {
		checks = append(checks, err)
	}
	say("go mod tidy -diff")
	if err := d.goRun(ctx, "go mod tidy -diff", nil, "mod", "tidy", "-diff"); err != nil {
		if ctx.Err() != nil {
			return err
		}
		checks = append(checks, fmt.Errorf("go.mod or go.sum is not tidy: run go mod tidy"))
	}
	say("go vet %s", strings.Join(pkgs, " "))
	if err := d.goRun(ctx, "go vet", build, append([]string{"vet"}, pkgs...)...); err != nil {
		if ctx.Err() != nil {
			return err
		}
		checks = append(checks, err)
	}
	say("gofmt, go mod tidy, go vet: %s", time.Since(start).Round(time.Second))

	// go vet ran above: the test runs skip their own vet pass.
	listed, err := d.goOutput(ctx, build, append([]string{"list"}, pkgs...)...)
	if err != nil {
		return err
	}
	racePkgs, plainPkgs := strings.Fields(listed), []string(nil)
	plainFlags := flags
	if slices.Contains(flags, "-race") {
		racePkgs, plainPkgs = nil, nil
		for _, p := range strings.Fields(listed) {
			if msgraphPackages.MatchString(p) {
				plainPkgs = append(plainPkgs, p)
			} else {
				racePkgs = append(racePkgs, p)
			}
		}
		plainFlags = slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == "-race" })
	}
	start = time.Now()
	var testErr error
	if len(racePkgs) > 0 {
		say("go test -vet=off %s %s%s", strings.Join(flags, " "), strings.Join(pkgs, " "), except(plainPkgs))
		testErr = d.goRun(ctx, "go test", env, append(append([]string{"test", "-vet=off"}, flags...), racePkgs...)...)
	}
	if len(plainPkgs) > 0 && ctx.Err() == nil {
		say("go test -vet=off %s %s", strings.Join(plainFlags, " "), strings.Join(plainPkgs, " "))
		err := d.goRun(ctx, "go test", append(env, "CGO_ENABLED=0"), append(append([]string{"test", "-vet=off"}, plainFlags...), plainPkgs...)...)
		if testErr == nil {
			testErr = err
		}
	}
	say("go test: %s", time.Since(start).Round(time.Second))
	if n, pkgs := apiAnswers(tally); n > 0 {
		say("API answers checked against handlers/openapi.json: %d (%s)", n, pkgs)
	}
	if testErr != nil {
		return testErr
	}

	// Every fuzz target for 10,000 executions, one to three seconds each (`make fuzz`
	// for longer); their seeds and corpora ran above as tests. A count, not a duration:
	// Go 1.26's fuzz coordinator can fail a target with "context deadline exceeded" and no
	// input when a duration runs out under load (go.dev/issue/75804).
	targeted := slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "-run") })
	if !targeted && fuzztime != "0" {
		if err := d.fuzzAll(ctx, pkgs, fuzztime, env); err != nil {
			return err
		}
	}
	if len(checks) > 0 {
		for _, c := range checks {
			say("%v", c)
		}
		return &failure{status: 1}
	}
	say("gofmt, go mod tidy, vet and tests passed")
	return nil
}

// apiAnswers sums the counts the test packages left in dir (internal/dev/apicheck's
// Report): how many answers of the API their clients checked against its description.
func apiAnswers(dir string) (int, string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	total, per := 0, map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var pkg string
		var n int
		if _, err := fmt.Sscan(string(data), &pkg, &n); err == nil {
			total += n
			per[pkg] += n
		}
	}
	var parts []string
	for _, pkg := range slices.Sorted(maps.Keys(per)) {
		parts = append(parts, fmt.Sprintf("%s %d", pkg, per[pkg]))
	}
	return total, strings.Join(parts, ", ")
}

func except(pkgs []string) string {
	if len(pkgs) == 0 {
		return ""
	}
	return ", except " + strings.Join(pkgs, " ")
}

// removeStaleTestData removes the data of runs that could not clean up (killed with
// SIGKILL): their directory names carry a pid that is gone.
func removeStaleTestData(local string) {
	dirs, _ := filepath.Glob(filepath.Join(local, "test-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "test-"), "-", 2)[0])
		if err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(dir)
		}
	}
}

// gofmt fails when gofmt would change a Go file of pkgs' directories.
func (d *dev) gofmt(ctx context.Context, pkgs []string) error {
	dirs, err := d.goOutput(ctx, nil, append([]string{"list", "-f", "{{.Dir}}"}, pkgs...)...)
	if err != nil {
		return err
	}
	var files []string
	for _, dir := range strings.Fields(dirs) {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		files = append(files, matches...)
	}
	gofmt, err := exec.LookPath("gofmt")
	if err != nil {
		goroot, err := d.goOutput(ctx, nil, "env", "GOROOT")
		if err != nil {
			return err
		}
		gofmt = filepath.Join(strings.TrimSpace(goroot), "bin", "gofmt")
	}
	say("gofmt -l (%d files)", len(files))
	var out bytes.Buffer
	p, err := d.launcher.Start(stack.Command{Name: "gofmt", Path: gofmt, Args: append([]string{"-l"}, files...), Dir: d.root(), Stdout: &out})
	if err != nil {
		return err
	}
	if err := p.Wait(); err != nil {
		return fmt.Errorf("gofmt failed (%s)", stack.ExitError(err))
	}
	if listed := strings.Fields(out.String()); len(listed) > 0 {
		for i, f := range listed {
			listed[i] = d.rel(f)
		}
		say("gofmt would change: %s", strings.Join(listed, " "))
		return fmt.Errorf("not gofmt-ed: %s (run gofmt -w)", strings.Join(listed, " "))
	}
	return nil
}

// goOutput runs the go command in the module root and returns its standard output.
func (d *dev) goOutput(ctx context.Context, env []string, args ...string) (string, error) {
	var out bytes.Buffer
	p, err := d.launcher.Start(stack.Command{Name: "go " + args[0], Path: "go", Args: args, Env: env, Dir: d.root(), Stdout: &out})
	if err != nil {
		return "", err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Stop()
		return "", ctx.Err()
	}
	if err := p.Wait(); err != nil {
		return "", fmt.Errorf("go %s failed (%s)", strings.Join(args, " "), stack.ExitError(err))
	}
	return out.String(), nil
}
