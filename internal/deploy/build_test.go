package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/activeloopai/azcreds/internal/deploy"
)

// TestBuildRejects checks that Build refuses, before building anything, the sources the
// host could not run: no executable name, one outside the package root, function folders
// the host would not load.
func TestBuildRejects(t *testing.T) {
	const host = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}`
	const fn = `{"bindings":[{"type":"queueTrigger","direction":"in","name":"job","queueName":"q"}]}`
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no executable name", map[string]string{"host.json": `{"version":"2.0"}`, "functions/a/function.json": fn},
			"no customHandler.description.defaultExecutablePath"},
		{"executable in a folder", map[string]string{
			"host.json":                 `{"customHandler":{"description":{"defaultExecutablePath":"bin/handler"}}}`,
			"functions/a/function.json": fn}, "must be a file name at the package root"},
		{"host.json not JSON", map[string]string{"host.json": `{`, "functions/a/function.json": fn}, "parse"},
		{"folder name the host refuses", map[string]string{"host.json": host, "functions/Sp.Poll/function.json": fn},
			"the host wants"},
		{"folder without function.json", map[string]string{"host.json": host, "functions/a/readme.txt": "x"},
			"function.json"},
		{"function.json without bindings", map[string]string{"host.json": host, "functions/a/function.json": `{"bindings":[]}`},
			"no bindings"},
		{"stray file in functions", map[string]string{"host.json": host, "functions/a/function.json": fn, "functions/notes.txt": "x"},
			"only function folders"},
		{"folder named like the executable", map[string]string{"host.json": host, "functions/handler/function.json": fn},
			"collides"},
		{"no functions", map[string]string{"host.json": host, "functions/": ""}, "no functions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				dir := filepath.Dir(p)
				if strings.HasSuffix(name, "/") {
					dir = p // just the folder
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if dir == p {
					continue
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := t.TempDir()
			_, err := deploy.Build(context.Background(), deploy.Options{Root: root, Out: out})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build: %v, want an error with %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(out, deploy.ZipName)); !os.IsNotExist(err) {
				t.Errorf("a zip was written despite the error (%v)", err)
			}
		})
	}
}

// TestDeployNeedsAz runs `make deploy`'s script on a machine without the Azure CLI: it must
// stop at once with a message that says what to install, and touch nothing.
func TestDeployNeedsAz(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, filepath.Join(moduleRoot(t), "scripts", "deploy.sh"))
	cmd.Env = []string{"PATH=" + t.TempDir(), "RESOURCE_GROUP=rg"} // a PATH with no az (nor anything else)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("deploy.sh without az: %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "the Azure CLI (az) is not installed") {
		t.Errorf("deploy.sh without az said:\n%s", out)
	}
}
