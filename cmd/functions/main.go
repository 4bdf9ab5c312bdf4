// Command functions writes functions/<name>/function.json for every function the Azure
// Functions host runs, from the API's route table and the job and timer tables
// (handlers.HostFunctions), and removes the folders of functions that no longer exist.
// `make functions` and `go generate ./handlers` run it; a handlers test fails while the
// committed files differ from what it writes.
//
//	go run ./cmd/functions [-dir functions]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/activeloopai/azcreds/handlers"
)

func main() {
	dir := flag.String("dir", "functions", "the functions folder beside host.json")
	flag.Parse()
	changed, err := write(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "functions:", err)
		os.Exit(1)
	}
	for _, c := range changed {
		fmt.Println(c)
	}
}

// definitionFile is the one file of a function's folder.
const definitionFile = "function.json"

// write brings dir in line with handlers.HostFunctions and returns what it changed. A
// folder of a function that no longer exists is removed only when it holds nothing but its
// function.json; anything else in it is an error, left for a person to look at.
func write(dir string) ([]string, error) {
	defs, err := handlers.HostFunctions()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var changed []string
	for _, e := range entries {
		if _, ok := defs[e.Name()]; ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			return changed, fmt.Errorf("%s: only function folders belong in %s", p, dir)
		}
		if err := os.Remove(filepath.Join(p, definitionFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return changed, err
		}
		if err := os.Remove(p); err != nil {
			return changed, fmt.Errorf("remove the folder of function %s, which no longer exists: %w", e.Name(), err)
		}
		changed = append(changed, "removed "+p)
	}
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := filepath.Join(dir, name, definitionFile)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, defs[name]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return changed, err
		}
		if err := os.WriteFile(p, defs[name], 0o644); err != nil {
			return changed, err
		}
		changed = append(changed, "wrote "+p)
	}
	return changed, nil
}
