// Package deploy builds the package the Azure Functions host runs, and its tests keep the
// deployment (infra/bicep) in step with the binary: the settings it reads, the functions
// it serves, the queues and table it uses, and the resource API versions that were checked.
//
// The package is a zip with, at its root, host.json, the handler binary (linux/amd64,
// static, named as host.json's customHandler.description.defaultExecutablePath says, mode
// 0755 in the zip) and one folder per function holding its function.json: the host looks
// for function.json only in the immediate subfolders of the app root, so the repository's
// functions/<name>/ folders are staged there. `make package` (cmd/package) calls [Build].
package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The package's target platform: what Azure Functions on Linux runs.
const (
	GOOS   = "linux"
	GOARCH = "amd64"
)

// Names under Options.Out.
const (
	// StageDir is the staged package: exactly what the zip holds.
	StageDir = "package"
	// ZipName is the package itself.
	ZipName = "azcreds.zip"
)

// Modes in the zip. The handler must be executable: the host starts it directly.
const (
	execMode fs.FileMode = 0o755
	fileMode fs.FileMode = 0o644
	dirMode              = fs.ModeDir | 0o755
)

// zipTime is every entry's modification time, so the same sources give the same zip.
var zipTime = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// functionName is what the host accepts as a function folder name.
var functionName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,127}$`)

// Options says where the sources are and where the package goes.
type Options struct {
	// Root is the module root: go.mod, main.go, host.json and functions/.
	Root string
	// Out receives StageDir and ZipName; StageDir is replaced, not merged.
	Out string
	// Stderr, when set, receives go build's output as it runs.
	Stderr io.Writer
}

// Result describes a built package.
type Result struct {
	// Zip is the path of the package.
	Zip string
	// Stage is the directory the zip was made from.
	Stage string
	// Executable is the handler's name at the package root (host.json's defaultExecutablePath).
	Executable string
	// Functions are the function folders at the package root, sorted.
	Functions []string
	// Entries are the zip's entry names in order.
	Entries []string
}

// Build stages host.json, the functions and a freshly built handler under Out/StageDir and
// zips them into Out/ZipName, the executable with mode 0755.
func Build(ctx context.Context, o Options) (Result, error) {
	if o.Root == "" || o.Out == "" {
		return Result{}, errors.New("package: Root and Out are required")
	}
	exe, err := ExecutableName(filepath.Join(o.Root, "host.json"))
	if err != nil {
		return Result{}, err
	}
	functions, err := Functions(filepath.Join(o.Root, "functions"))
	if err != nil {
		return Result{}, err
	}
	for _, f := range functions {
		if f == exe || f == "host.json" {
			return Result{}, fmt.Errorf("package: function folder %q collides with a file at the package root", f)
		}
	}

	stage := filepath.Join(o.Out, StageDir)
	if err := os.RemoveAll(stage); err != nil {
		return Result{}, fmt.Errorf("package: clear %s: %w", stage, err)
	}
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return Result{}, fmt.Errorf("package: %w", err)
	}
	if err := copyFile(filepath.Join(o.Root, "host.json"), filepath.Join(stage, "host.json")); err != nil {
		return Result{}, err
	}
	for _, f := range functions {
		if err := copyDir(filepath.Join(o.Root, "functions", f), filepath.Join(stage, f)); err != nil {
			return Result{}, err
		}
	}
	if err := goBuild(ctx, o.Root, filepath.Join(stage, exe), o.Stderr); err != nil {
		return Result{}, err
	}

	zipPath := filepath.Join(o.Out, ZipName)
	entries, err := writeZip(stage, zipPath, exe)
	if err != nil {
		return Result{}, err
	}
	return Result{Zip: zipPath, Stage: stage, Executable: exe, Functions: functions, Entries: entries}, nil
}

// hostFile is the part of host.json that names the custom handler's executable.
type hostFile struct {
	CustomHandler struct {
		Description struct {
			DefaultExecutablePath string `json:"defaultExecutablePath"`
		} `json:"description"`
	} `json:"customHandler"`
}

// ExecutableName returns the handler's file name from host.json's
// customHandler.description.defaultExecutablePath; it must be a plain name at the root.
func ExecutableName(hostJSON string) (string, error) {
	data, err := os.ReadFile(hostJSON)
	if err != nil {
		return "", fmt.Errorf("package: %w", err)
	}
	var h hostFile
	if err := json.Unmarshal(data, &h); err != nil {
		return "", fmt.Errorf("package: parse %s: %w", hostJSON, err)
	}
	exe := h.CustomHandler.Description.DefaultExecutablePath
	switch {
	case exe == "":
		return "", fmt.Errorf("package: %s has no customHandler.description.defaultExecutablePath", hostJSON)
	case exe != filepath.Base(exe) || strings.ContainsAny(exe, `/\`) || exe == "." || exe == "..":
		return "", fmt.Errorf("package: defaultExecutablePath %q must be a file name at the package root", exe)
	case exe == "host.json":
		return "", errors.New("package: defaultExecutablePath cannot be host.json")
	}
	return exe, nil
}

// functionFile is the part of function.json the package checks.
type functionFile struct {
	Bindings []json.RawMessage `json:"bindings"`
}

// Functions lists the function folders under dir, sorted: each one's name is a valid
// function name and it holds a function.json with at least one binding.
func Functions(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			return nil, fmt.Errorf("package: %s: only function folders belong in %s", e.Name(), dir)
		}
		if !functionName.MatchString(e.Name()) {
			return nil, fmt.Errorf("package: function folder %q: the host wants %s", e.Name(), functionName)
		}
		path := filepath.Join(dir, e.Name(), "function.json")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("package: function %s: %w", e.Name(), err)
		}
		var f functionFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("package: parse %s: %w", path, err)
		}
		if len(f.Bindings) == 0 {
			return nil, fmt.Errorf("package: %s has no bindings", path)
		}
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("package: no functions in %s", dir)
	}
	slices.Sort(names)
	return names, nil
}

// goBuild builds the module's main package at root as a static linux/amd64 binary, the
// way the host runs it: no cgo (no libc to match), no local paths, no symbol table.
func goBuild(ctx context.Context, root, out string, stderr io.Writer) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", abs, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+GOOS, "GOARCH="+GOARCH)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if stderr != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&buf, stderr), io.MultiWriter(&buf, stderr)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("package: go build (%s/%s): %w\n%s", GOOS, GOARCH, err, buf.Bytes())
	}
	return nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	return nil
}

// copyDir copies the regular files of a function folder; anything else is refused so the
// package never holds what the repository does not show.
func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return fmt.Errorf("package: %s: only regular files belong in a function folder", filepath.Join(from, e.Name()))
		}
		if err := copyFile(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// writeZip zips the tree under stage into path (written aside, then renamed into place):
// entries sorted, directories before their files, a fixed time, Unix modes, and the
// executable exe at the root with mode 0755, everything else 0644.
func writeZip(stage, path, exe string) ([]string, error) {
	type entry struct {
		name string
		file string
		dir  bool
	}
	var entries []entry
	err := filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == stage {
			return err
		}
		rel, err := filepath.Rel(stage, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			entries = append(entries, entry{name: name + "/", dir: true})
		case d.Type().IsRegular():
			entries = append(entries, entry{name: name, file: p})
		default:
			return fmt.Errorf("%s is neither a file nor a folder", p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	// WalkDir visits in lexical order, a folder before its contents: already sorted.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".zip-*")
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	defer os.Remove(tmp.Name())
	zw := zip.NewWriter(tmp)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Modified: zipTime, Method: zip.Deflate}
		switch {
		case e.dir:
			h.Method = zip.Store
			h.SetMode(dirMode)
		case e.name == exe:
			h.SetMode(execMode)
		default:
			h.SetMode(fileMode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			tmp.Close()
			return nil, fmt.Errorf("package: zip %s: %w", e.name, err)
		}
		if !e.dir {
			if err := copyInto(w, e.file); err != nil {
				tmp.Close()
				return nil, err
			}
		}
		names = append(names, e.name)
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("package: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	return names, nil
}

func copyInto(w io.Writer, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("package: zip %s: %w", file, err)
	}
	return nil
}
