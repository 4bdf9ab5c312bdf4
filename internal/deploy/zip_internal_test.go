package deploy

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteZip checks the zip's entries and modes, and that the same tree gives the same
// bytes (fixed times, sorted entries), whatever the files' modes on disk.
func TestWriteZip(t *testing.T) {
	stage := t.TempDir()
	files := map[string]os.FileMode{
		"handler":               0o700, // built with the umask; the zip says 0755 regardless
		"host.json":             0o600,
		"sp-poll/function.json": 0o755, // executable on disk; 0644 in the zip
		"a-http/function.json":  0o644,
	}
	for name, mode := range files {
		p := filepath.Join(stage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	first, second := filepath.Join(out, "a.zip"), filepath.Join(out, "b.zip")
	names, err := writeZip(stage, first, "handler")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a-http/", "a-http/function.json", "handler", "host.json", "sp-poll/", "sp-poll/function.json"}
	if !slices.Equal(names, want) {
		t.Errorf("entries %v, want %v", names, want)
	}
	if _, err := writeZip(stage, second, "handler"); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if !bytes.Equal(a, b) {
		t.Error("two zips of the same tree differ")
	}

	zr, err := zip.OpenReader(first)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		want := fileMode
		switch {
		case f.Name == "handler":
			want = execMode
		case f.Name[len(f.Name)-1] == '/':
			want = dirMode
		}
		if f.Mode() != want {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), want)
		}
		if !f.Modified.Equal(zipTime) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, zipTime)
		}
	}
}
