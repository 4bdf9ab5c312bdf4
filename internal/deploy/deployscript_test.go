package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeAz is an Azure CLI that answers what `make deploy` asks after the infrastructure: the
// signed-in account, the deployment's outputs, and the package upload, which behaves as
// $AZ_UPLOAD says: "fail N" refuses the first N uploads (as a role assignment that has not
// taken effect yet does), "hang" never returns.
const fakeAz = `#!/usr/bin/env bash
case "$*" in
"account show"*) echo fake ;;
"deployment group show"*) echo value ;;
"functionapp deployment source config-zip"*)
	n=$(($(cat "$AZ_STATE" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$AZ_STATE"
	case "$AZ_UPLOAD" in
	hang) exec sleep 60 ;;
	fail*) ((n > ${AZ_UPLOAD#fail })) || { echo "ERROR: 403 AuthorizationFailure (attempt $n)" >&2; exit 1; } ;;
	esac ;;
*) echo "fake az: unexpected: $*" >&2; exit 2 ;;
esac
`

// runDeploy runs a copy of scripts/deploy.sh with SKIP_INFRA=1 (the upload only) against
// fakeAz in a directory of its own, so that its release copy lands there.
func runDeploy(t *testing.T, env ...string) (string, int, int) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	root := t.TempDir()
	script, err := os.ReadFile(filepath.Join(moduleRoot(t), "scripts", "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "fakebin")
	for path, body := range map[string]string{
		filepath.Join(root, "scripts", "deploy.sh"): string(script),
		filepath.Join(bin, "az"):                    fakeAz,
		filepath.Join(root, "package.zip"):          "PK",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(root, "uploads")
	cmd := exec.Command(bash, filepath.Join(root, "scripts", "deploy.sh"))
	cmd.Dir = root
	cmd.Env = append([]string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + root,
		"RESOURCE_GROUP=rg", "SKIP_INFRA=1", "ZIP=" + filepath.Join(root, "package.zip"), "AZ_STATE=" + state,
		"UPLOAD_RETRY_INTERVAL=0"}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	uploads := 0
	if b, err := os.ReadFile(state); err == nil {
		if uploads, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			t.Fatalf("upload count: %v", err)
		}
	}
	return string(out), code, uploads
}

// TestDeployUploadWaitsForRoles: a refused upload is tried again until it goes through,
// for as long as a new role assignment may take to apply, and no longer.
func TestDeployUploadWaitsForRoles(t *testing.T) {
	out, code, uploads := runDeploy(t, "AZ_UPLOAD=fail 3")
	if code != 0 || uploads != 4 || !strings.Contains(out, "deployed") || !strings.Contains(out, "attempt 3;") {
		t.Fatalf("three refusals then success: exit %d after %d uploads; output:\n%s", code, uploads, out)
	}

	out, code, _ = runDeploy(t, "AZ_UPLOAD=fail 9", "UPLOAD_WAIT=3", "UPLOAD_RETRY_INTERVAL=1")
	if code != 1 || !strings.Contains(out, "the package upload kept failing for 3 s") {
		t.Fatalf("refused for longer than UPLOAD_WAIT: exit %d; output:\n%s", code, out)
	}
}

// TestDeployUploadIsBounded: an upload whose status wait never ends (a host that never
// starts) is cut off after UPLOAD_ATTEMPT_TIMEOUT with a message saying where to look.
func TestDeployUploadIsBounded(t *testing.T) {
	out, code, uploads := runDeploy(t, "AZ_UPLOAD=hang", "UPLOAD_ATTEMPT_TIMEOUT=1")
	if code != 1 || uploads != 1 || !strings.Contains(out, "did not finish within 1 s") {
		t.Fatalf("hanging upload: exit %d after %d uploads; output:\n%s", code, uploads, out)
	}
}

// TestDeployRefusesBadWaits: the wait settings are numbers of seconds.
func TestDeployRefusesBadWaits(t *testing.T) {
	out, code, uploads := runDeploy(t, "UPLOAD_WAIT=10m")
	if code != 1 || uploads != 0 || !strings.Contains(out, "UPLOAD_WAIT is a number of seconds") {
		t.Fatalf("UPLOAD_WAIT=10m: exit %d after %d uploads; output:\n%s", code, uploads, out)
	}
}
