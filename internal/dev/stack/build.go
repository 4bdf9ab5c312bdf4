package stack

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Binary is a program of the module the stack runs.
type Binary struct {
	Name    string // file name
	Package string // import path or ./path from the module root
}

// The stack's programs.
var (
	HandlerBinary    = Binary{"handler", "."}
	StandInBinary    = Binary{"localazure", "./cmd/localazure"}
	FaultProxyBinary = Binary{"faultproxy", "./cmd/faultproxy"}
	LoadTestBinary   = Binary{"loadtest", "./cmd/loadtest"}
)

// BuildEnv is how every build of the module is made, as `make package` builds the handler
// for Azure: static (CGO_ENABLED=0) and with -trimpath (GoFlags), so that the stack's
// builds, go vet and the tests' builds share one compilation of each dependency
// (msgraph-sdk-go takes minutes), and no path of this machine lands in a binary.
func BuildEnv(goflags string) []string {
	return []string{"CGO_ENABLED=0", "GOFLAGS=" + GoFlags(goflags)}
}

// GoFlags is goflags (the GOFLAGS of the environment) with -trimpath.
func GoFlags(goflags string) string {
	if slices.Contains(strings.Fields(goflags), "-trimpath") {
		return goflags
	}
	return strings.TrimSpace(goflags + " -trimpath")
}

// Build compiles bins into dir with `go build` in the module root, one after another,
// with the output on this process's.
func Build(ctx context.Context, l *Launcher, root, goflags, dir string, bins ...Binary) error {
	for _, b := range bins {
		p, err := l.Start(Command{Name: "go build " + b.Package, Path: "go", Dir: root, Env: BuildEnv(goflags),
			Args: []string{"build", "-o", filepath.Join(dir, b.Name), b.Package}})
		if err != nil {
			return err
		}
		select {
		case <-p.Done():
		case <-ctx.Done():
			p.Stop()
			return ctx.Err()
		}
		if err := p.Wait(); err != nil {
			return fmt.Errorf("go build %s: %s", b.Package, ExitError(err))
		}
	}
	return nil
}
