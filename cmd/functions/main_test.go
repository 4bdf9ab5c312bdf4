package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/activeloopai/azcreds/handlers"
)

// TestWrite: write brings a folder in line with the tables, removes a retired function's
// folder, changes nothing when run again, and leaves a folder with anything else in it.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	retired := filepath.Join(dir, "retired-fn")
	if err := os.MkdirAll(retired, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(retired, definitionFile), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := write(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(retired); !os.IsNotExist(err) {
		t.Errorf("the retired function's folder is still there (%v)", err)
	}
	want, err := handlers.HostFunctions()
	if err != nil {
		t.Fatal(err)
	}
	for name, def := range want {
		got, err := os.ReadFile(filepath.Join(dir, name, definitionFile))
		if err != nil || !bytes.Equal(got, def) {
			t.Errorf("%s: wrote %q (%v), want %q", name, got, err, def)
		}
	}
	if changed, err := write(dir); err != nil || len(changed) != 0 {
		t.Errorf("a second run changed %v (%v), want nothing", changed, err)
	}

	kept := filepath.Join(dir, "hand-made")
	if err := os.MkdirAll(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kept, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := write(dir); err == nil {
		t.Error("write removed or passed over a folder holding more than a function.json")
	}
	if _, err := os.Stat(filepath.Join(kept, "notes.txt")); err != nil {
		t.Errorf("a file that is not a function definition was removed: %v", err)
	}
}
