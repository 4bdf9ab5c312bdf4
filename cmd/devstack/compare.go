package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/loadtest"
	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// compare is `make compare`: `devstack load` of a git ref and of this tree, one after the
// other on fresh stacks (alternating, COMPARE_RUNS times each), then the figures of each
// side and their ratios, this tree over the ref.
//
//   - REF is the ref to compare with; by default the merge base of HEAD and COMPARE_BASE
//     (default main): where this branch left it.
//   - The ref's tree is exported (git archive) into .local/compare/<time>/ref, with a
//     link to this tree's node_modules, and its own cmd/devstack builds and runs its own
//     stack and load generator there; this tree runs its own. Each writes LOAD_JSON and,
//     when it knows LOAD_PROFILE, a CPU profile of the handler during /creds.
//   - The load is `make load`'s, with its variables (LOAD_N, LOAD_CONNS,
//     LOAD_CREDS_CONNS, ...) passed to both sides; LOAD_DURATION defaults to 30s here.
//   - A ref whose load generator lacks a figure (an older `loadtest` runs /creds at one
//     connection count and records no profile) is compared on what it has; the rest is
//     named as missing.
//
// The reports, profiles and logs stay in .local/compare/<time>/.
func compare(ctx context.Context, d *dev, args []string) error {
	ref := os.Getenv("REF")
	if ref == "" {
		base := envOr("COMPARE_BASE", "main")
		out, err := d.output(ctx, "git merge-base", "git", "merge-base", "HEAD", base)
		if err != nil {
			return fmt.Errorf("REF is not set and the merge base of HEAD and %s is unknown: %w", base, err)
		}
		ref = strings.TrimSpace(string(out))
		say("REF is not set: comparing with %s, the merge base of HEAD and %s", short(ref), base)
	}
	out, err := d.output(ctx, "git rev-parse", "git", "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return fmt.Errorf("REF=%s is not a commit: %w", ref, err)
	}
	sha := strings.TrimSpace(string(out))
	runs, err := strconv.Atoi(envOr("COMPARE_RUNS", "1"))
	if err != nil || runs < 1 || runs > 10 {
		return fmt.Errorf("COMPARE_RUNS=%s: want 1 to 10", os.Getenv("COMPARE_RUNS"))
	}
	levels, err := loadtest.ParseLevels(envOr("LOAD_CREDS_CONNS", envOr("LOAD_CONNS", "1,16,64")))
	if err != nil {
		return fmt.Errorf("LOAD_CREDS_CONNS: %w", err)
	}
	getConns, err := strconv.Atoi(envOr("LOAD_CONNS", "64"))
	if err != nil || getConns < 1 {
		return fmt.Errorf("LOAD_CONNS=%s: want one connection count", os.Getenv("LOAD_CONNS"))
	}

	dir := filepath.Join(d.files.Local(), "compare", time.Now().Format("20060102-150405"))
	refRoot := filepath.Join(dir, "ref")
	if err := os.MkdirAll(refRoot, 0o755); err != nil {
		return err
	}
	say("exporting %s into %s", short(sha), d.rel(refRoot))
	if err := d.export(ctx, sha, refRoot); err != nil {
		return err
	}
	// The ref's tree is removed at the end; its reports, profiles and logs stay.
	d.cleanups = append(d.cleanups, func() { os.RemoveAll(refRoot) })
	if err := os.Symlink(filepath.Join(d.root(), "node_modules"), filepath.Join(refRoot, "node_modules")); err != nil {
		return err
	}
	refDevstack := filepath.Join(refRoot, "bin", "devstack")
	say("go build %s's cmd/devstack", short(sha))
	// Its tree lies inside this repository's: without -buildvcs=false its binaries would be
	// stamped with this repository's revision.
	refGoflags := strings.TrimSpace(os.Getenv("GOFLAGS") + " -buildvcs=false")
	if err := stack.Build(ctx, d.launcher, refRoot, refGoflags, filepath.Dir(refDevstack), stack.Binary{Name: "devstack", Package: "./cmd/devstack"}); err != nil {
		return err
	}
	thisDevstack, err := os.Executable()
	if err != nil {
		return err
	}
	differs, err := d.differs(ctx, sha, "internal/dev/loadtest", "cmd/loadtest")
	if err != nil {
		return err
	}
	generatorNote := ""
	if differs {
		generatorNote = fmt.Sprintf("note: the load generator (internal/dev/loadtest, cmd/loadtest) differs between %s and this tree: each side runs its own, so a figure of what changed there compares two loads, not two handlers", short(sha))
		say("%s", generatorNote)
	}

	sides := []side{
		{name: "before", label: short(sha), root: refRoot, devstack: refDevstack, goflags: refGoflags},
		{name: "after", label: "this tree", root: d.root(), devstack: thisDevstack},
	}
	env := []string{"LOAD_DURATION=" + envOr("LOAD_DURATION", "30s")}
	for i := 1; i <= runs; i++ {
		for s := range sides {
			sd := &sides[s]
			if err := d.loadRun(ctx, sd, i, dir, env); err != nil {
				return err
			}
		}
	}

	fmt.Println()
	fmt.Printf("make compare: before = %s (%s), after = this tree; %d run(s) each, alternating; medians\n", short(sha), ref, runs)
	fmt.Print(formatComparison(compareReports(sides[0].reports, sides[1].reports, levels, getConns)))
	if generatorNote != "" {
		fmt.Println(generatorNote)
	}
	for _, sd := range sides {
		for i, l := range sd.loads {
			fmt.Printf("%s run %d: load average %s before, %s after\n", sd.name, i+1, l[0], l[1])
		}
	}
	for _, sd := range sides {
		if err := d.printProfile(ctx, sd); err != nil {
			return err
		}
	}
	fmt.Printf("\nreports, profiles and logs: %s\n", d.rel(dir))
	return nil
}

// side is one of the two trees compared, and what its runs produced.
type side struct {
	name, label string
	root        string // where its devstack runs
	devstack    string
	goflags     string // GOFLAGS of its builds, when not this process's
	reports     []loadtest.Report
	profiles    []string
	loads       [][2]string // load average before and after each run
}

// loadRun runs one side's `devstack load` with LOAD_JSON and LOAD_PROFILE in dir, and
// reads its report.
func (d *dev) loadRun(ctx context.Context, sd *side, i int, dir string, env []string) error {
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", sd.name, i))
	report, profile, log := base+".json", base+".pprof", base+".log"
	env = append(env, "LOAD_JSON="+report, "LOAD_PROFILE="+profile)
	if sd.goflags != "" {
		env = append(env, "GOFLAGS="+sd.goflags)
	}
	say("%s run %d (%s): devstack load, output in %s", sd.name, i, sd.label, d.rel(log))
	before := loadAverage()
	start := time.Now()
	p, err := d.launcher.Start(stack.Command{Name: sd.name + " devstack load", Path: sd.devstack, Args: []string{"load"},
		Env: env, Dir: sd.root, Log: log, Grace: time.Minute})
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := p.Wait(); err != nil {
		return fmt.Errorf("%s run %d failed (%s); see %s", sd.name, i, stack.ExitError(err), d.rel(log))
	}
	sd.loads = append(sd.loads, [2]string{before, loadAverage()})
	say("%s run %d: done in %s", sd.name, i, time.Since(start).Round(time.Second))
	data, err := os.ReadFile(report)
	if err != nil {
		return fmt.Errorf("%s run %d wrote no report: %w", sd.name, i, err)
	}
	var r loadtest.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s run %d: read %s: %w", sd.name, i, d.rel(report), err)
	}
	sd.reports = append(sd.reports, r)
	if _, err := os.Stat(profile); err == nil {
		sd.profiles = append(sd.profiles, profile)
	}
	return nil
}

// printProfile prints the top entries of a side's first CPU profile, flat and cumulative.
func (d *dev) printProfile(ctx context.Context, sd side) error {
	if len(sd.profiles) == 0 {
		fmt.Printf("\n%s (%s): no CPU profile (its load generator records none)\n", sd.name, sd.label)
		return nil
	}
	for _, order := range []string{"flat", "cum"} {
		args := []string{"tool", "pprof", "-top", "-nodecount=15"}
		if order == "cum" {
			args = append(args, "-cum")
		}
		out, err := d.output(ctx, "go tool pprof", "go", append(args, sd.profiles[0])...)
		if err != nil {
			return err
		}
		fmt.Printf("\n%s (%s), /creds CPU profile, top by %s (%s):\n%s", sd.name, sd.label, order, d.rel(sd.profiles[0]), out)
	}
	return nil
}

// output runs a command in the module root and returns its standard output.
func (d *dev) output(ctx context.Context, name, path string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	p, err := d.launcher.Start(stack.Command{Name: name, Path: path, Args: args, Dir: d.root(), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
	if err := p.Wait(); err != nil {
		return nil, fmt.Errorf("%s: %s: %s", name, stack.ExitError(err), strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// differs reports whether paths differ between commit and this tree (uncommitted changes
// included).
func (d *dev) differs(ctx context.Context, commit string, paths ...string) (bool, error) {
	out, err := d.output(ctx, "git diff", "git", append([]string{"diff", "--name-only", commit, "--"}, paths...)...)
	if err != nil {
		return false, err
	}
	return len(bytes.TrimSpace(out)) > 0, nil
}

// export writes the tree of commit into dir, from `git archive`: no worktree is
// registered, so nothing is left in the repository if the run is cut short.
func (d *dev) export(ctx context.Context, commit, dir string) error {
	pr, pw := io.Pipe()
	p, err := d.launcher.Start(stack.Command{Name: "git archive", Path: "git", Args: []string{"archive", "--format=tar", commit},
		Dir: d.root(), Stdout: pw})
	if err != nil {
		return err
	}
	go func() { pw.CloseWithError(p.Wait()) }()
	err = untar(pr, dir)
	// Read what follows the archive's end, so git finishes writing and exits.
	_, _ = io.Copy(io.Discard, pr)
	if waitErr := p.Wait(); waitErr != nil {
		return fmt.Errorf("git archive %s: %s", commit, stack.ExitError(waitErr))
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", commit, err)
	}
	return ctx.Err()
}

// untar writes the regular files, directories and symbolic links of a tar stream under
// dir, refusing any name that would land outside it.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q is outside the tree", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader: // git archive's commit id
		default:
			return fmt.Errorf("archive entry %q: type %c not handled", h.Name, h.Typeflag)
		}
	}
}

// short is a commit id's first 12 characters.
func short(sha string) string {
	if len(sha) > 12 && strings.Trim(sha, "0123456789abcdef") == "" {
		return sha[:12]
	}
	return sha
}
