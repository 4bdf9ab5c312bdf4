package credential

import (
	"os/exec"
	"strings"
	"testing"
)

// goList runs `go list` from the module root with the given arguments.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

// TestDomainImportsNoAzureSDK holds the architecture's line: the domain, and the
// in-memory ports its tests run on, depend on no Azure SDK and no adapter (the test clock
// aside).
func TestDomainImportsNoAzureSDK(t *testing.T) {
	for _, pkg := range []string{".", "./credentialtest"} {
		for _, dep := range goList(t, "-deps", pkg) {
			if strings.Contains(dep, "github.com/Azure/") || strings.Contains(dep, "microsoftgraph") ||
				strings.Contains(dep, "/azcreds/internal/") && !strings.HasSuffix(dep, "/internal/credential") &&
					!strings.HasSuffix(dep, "/internal/credential/credentialtest") && !strings.HasSuffix(dep, "/internal/clocktest") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}

// TestHandlersImportNoAzureSDK: the HTTP and queue-trigger adapters stay thin; every
// Azure call sits behind the domain's interfaces.
func TestHandlersImportNoAzureSDK(t *testing.T) {
	for _, dep := range goList(t, "-deps", "github.com/activeloopai/azcreds/handlers") {
		if strings.Contains(dep, "github.com/Azure/") || strings.Contains(dep, "microsoftgraph") {
			t.Errorf("handlers depends on %s", dep)
		}
	}
}

// TestOnlyGraphLinksMSGraph keeps msgraph-sdk-go (minutes of cold build, tens of MB) in
// one package: only it and the binary that wires it may link it, tests included.
func TestOnlyGraphLinksMSGraph(t *testing.T) {
	const module = "github.com/activeloopai/azcreds"
	allowed := map[string]bool{module: true, module + "/internal/azure/graph": true}
	for _, pkg := range goList(t, module+"/...") {
		if allowed[pkg] {
			continue
		}
		for _, dep := range goList(t, "-test", "-deps", pkg) {
			if strings.HasPrefix(dep, "github.com/microsoftgraph/") {
				t.Errorf("%s (or its tests) links %s", pkg, dep)
				break
			}
		}
	}
}

// TestProductLinksNoDevTools keeps the local stack's tools (internal/dev: the stand-in, the
// fault proxy, the load generator, the walkthrough client, the stack launcher, the OpenAPI
// checker), the OpenAPI validator they use (kin-openapi) and the browser driver of the
// wizard page's tests out of the binary that is deployed to Azure.
func TestProductLinksNoDevTools(t *testing.T) {
	const module = "github.com/activeloopai/azcreds"
	for _, dep := range goList(t, "-deps", module) {
		if strings.HasPrefix(dep, module+"/internal/dev/") || strings.HasPrefix(dep, "github.com/getkin/") ||
			strings.HasPrefix(dep, "github.com/chromedp/") {
			t.Errorf("the handler binary links %s", dep)
		}
	}
}
