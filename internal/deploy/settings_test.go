package deploy_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/config"
)

// notInAppSettings are the settings the binary reads that the Bicep must never set, each
// with why: the local-only ones, which Azure mode refuses (config.LocalOnly, with the
// reason the binary gives), the local-stack switch, and the port the host sets itself. Any
// AZCREDS_LOCAL_* setting is local too.
func notInAppSettings() map[string]string {
	m := map[string]string{
		config.KeyCustomHandlerPort: "set by the Functions host when it starts the handler",
		config.KeyLocalStack:        "the local-stack switch; the handler refuses it under the Functions host",
	}
	for _, s := range config.LocalOnly() {
		m[s.Key] = "local-only: " + s.Why
	}
	return m
}

const localPrefix = "AZCREDS_LOCAL_"

// hostSettings are the app settings in the Bicep that the binary does not read: the
// Functions host's own, each with what it is for.
var hostSettings = map[string]string{
	// The host's storage (AzureWebJobsStorage) signs in with a managed identity...
	"AzureWebJobsStorage__credential": "identity-based host storage: managedidentity",
	// ...and keeps its leases, keys and state in blobs; the handler has no blobs of its own there.
	"AzureWebJobsStorage__blobServiceUri": "the host's blob endpoint",
	// Where the host sends telemetry...
	"APPLICATIONINSIGHTS_CONNECTION_STRING": "the Application Insights resource",
	// ...authenticated with the managed identity (the resource refuses keys: DisableLocalAuth).
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID telemetry as the identity's client id",
}

func isLocalOnly(key string) bool {
	_, ok := notInAppSettings()[key]
	return ok || strings.HasPrefix(key, localPrefix)
}

// settingKeys parses internal/config/config.go and returns the values of its Key* string
// constants: every setting the binary reads, found in the source rather than listed by hand.
func settingKeys(t *testing.T, root string) []string {
	t.Helper()
	path := filepath.Join(root, "internal", "config", "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Key") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s: %s is not a string literal", path, name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, v)
			}
		}
	}
	if len(keys) < 10 {
		t.Fatalf("%s: found only %d Key* constants: %v", path, len(keys), keys)
	}
	slices.Sort(keys)
	return keys
}

// TestSettingsContract holds the settings the binary reads, local.settings.json.example and
// the Bicep app settings to one another: every setting is documented in the example; every
// one but the local-only ones is set in Azure, by the name the binary reads; the local-only
// ones never are; and every app setting in the Bicep is read by the binary or is one of the
// host's own, listed above with what it is for.
func TestSettingsContract(t *testing.T) {
	root := moduleRoot(t)
	keys := settingKeys(t, root)

	// The parse sees what the binary's own list says it reads.
	listed := slices.Clone(config.Keys())
	slices.Sort(listed)
	if diff := cmp.Diff(listed, keys); diff != "" {
		t.Errorf("config.Keys() and the Key* constants of config.go differ (-Keys +constants):\n%s", diff)
	}

	data, err := os.ReadFile(filepath.Join(root, "local.settings.json.example"))
	if err != nil {
		t.Fatal(err)
	}
	var example struct {
		Values map[string]string `json:"Values"`
	}
	if err := json.Unmarshal(data, &example); err != nil {
		t.Fatalf("local.settings.json.example: %v", err)
	}

	bicep := appSettings(t, bicepFiles(t, moduleRoot(t)))
	if len(bicep) == 0 {
		t.Fatal("found no appSettings in infra/bicep")
	}
	inBicep := map[string]int{}
	for _, name := range bicep {
		inBicep[name]++
	}
	read := map[string]bool{}
	for _, k := range keys {
		read[k] = true
		if _, ok := example.Values[k]; !ok {
			t.Errorf("%s is read by the binary but missing from local.settings.json.example", k)
		}
		switch {
		case isLocalOnly(k) && inBicep[k] > 0:
			t.Errorf("%s is local-only (%s) but set in the Bicep app settings", k, why(k))
		case !isLocalOnly(k) && inBicep[k] == 0:
			t.Errorf("%s is read by the binary but not set in the Bicep app settings", k)
		}
	}
	for _, name := range sortedKeys(inBicep) {
		if inBicep[name] > 1 {
			t.Errorf("app setting %s is set %d times", name, inBicep[name])
		}
		if !read[name] && hostSettings[name] == "" {
			t.Errorf("app setting %s is neither read by the binary (internal/config) nor a host setting listed in this test", name)
		}
	}
	for _, name := range sortedKeys(hostSettings) {
		if read[name] {
			t.Errorf("%s is listed as a host setting but the binary reads it: drop it from hostSettings", name)
		}
		if inBicep[name] == 0 {
			t.Errorf("host setting %s is not in the Bicep app settings", name)
		}
	}
	for _, name := range sortedKeys(notInAppSettings()) {
		if !read[name] {
			t.Errorf("%s is listed as local-only but the binary does not read it", name)
		}
	}
}

func why(key string) string {
	if r, ok := notInAppSettings()[key]; ok {
		return r
	}
	return "a local-stack setting"
}

// TestBicepSetsNoLocalSetting: the Bicep's code (comments may explain them) never names
// the local-stack switch, an AZCREDS_LOCAL_* setting or a local-only setting, so no
// deployment can turn the local stack on or hand the handler a setting Azure mode refuses:
// not as an app setting, nor through a parameter, a variable or a module.
func TestBicepSetsNoLocalSetting(t *testing.T) {
	for _, f := range bicepFiles(t, moduleRoot(t)) {
		for _, k := range localNamed(f.codeOnly()) {
			t.Errorf("%s names %s (%s)", f.Path, k, why(k))
		}
	}
	// The check sees a setting where the Bicep would put one, and only whole names.
	sample := "appSettings: [\n  { name: 'AZCREDS_LOCAL_STACK', value: 'true' }\n  { name: 'AzureWebJobsStorage__tableServiceUri' }\n" +
		"  { name: 'AZCREDS_LOCAL_${feature}' }\n  { name: 'AZCREDS_LISTEN_ADDR' }\n]"
	if got, want := localNamed(sample), []string{"AZCREDS_LISTEN_ADDR", "AZCREDS_LOCAL_", "AZCREDS_LOCAL_STACK"}; !slices.Equal(got, want) {
		t.Errorf("on a sample: found %v, want %v", got, want)
	}
}

// localNamed returns the settings of notInAppSettings, and the AZCREDS_LOCAL_ prefix, that
// code names in a string literal, sorted.
func localNamed(code string) []string {
	var found []string
	for _, k := range sortedKeys(notInAppSettings()) {
		if strings.Contains(code, "'"+k+"'") {
			found = append(found, k)
		}
	}
	if strings.Contains(code, "'"+localPrefix) {
		found = append(found, localPrefix)
	}
	slices.Sort(found)
	return found
}
