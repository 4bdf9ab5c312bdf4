package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/queue"
)

// verifiedVersions are the resource types the Bicep may use, each at the API version that
// was checked against Microsoft's template reference (learn.microsoft.com/azure/templates)
// and the reference templates (Azure-Samples/azure-functions-flex-consumption-samples
// IaC/bicep, microsoftgraph/msgraph-bicep-types quickstart-templates). A new type or a
// changed version is a decision: check it the same way, then add it here.
var verifiedVersions = map[string]string{
	// microsoft.web/change-log/sites: functionAppConfig (deployment storage, runtime,
	// scaleAndConcurrency) since 2023-12-01; 2024-04-01 in the Flex sample's function.bicep.
	"Microsoft.Web/sites": "2024-04-01",
	// FC1 / FlexConsumption plan: the Flex sample's function.bicep.
	"Microsoft.Web/serverfarms": "2024-04-01",
	// microsoft.storage/storageaccounts (allowSharedKeyAccess) and
	// storageaccounts/queueservices/queues at 2023-05-01; one API version for the provider.
	"Microsoft.Storage/storageAccounts":                         "2023-05-01",
	"Microsoft.Storage/storageAccounts/blobServices":            "2023-05-01",
	"Microsoft.Storage/storageAccounts/blobServices/containers": "2023-05-01",
	"Microsoft.Storage/storageAccounts/queueServices":           "2023-05-01",
	"Microsoft.Storage/storageAccounts/queueServices/queues":    "2023-05-01",
	"Microsoft.Storage/storageAccounts/tableServices":           "2023-05-01",
	"Microsoft.Storage/storageAccounts/tableServices/tables":    "2023-05-01",
	"Microsoft.ManagedIdentity/userAssignedIdentities":          "2023-01-31",
	"Microsoft.Insights/components":                             "2020-02-02", // change log: DisableLocalAuth, WorkspaceResourceId
	"Microsoft.OperationalInsights/workspaces":                  "2023-09-01", // change log: GA, no property changes since 2022-10-01
	"Microsoft.Authorization/roleAssignments":                   "2022-04-01",
	// Microsoft Graph Bicep extension, v1.0 types (learn.microsoft.com/graph/templates/bicep/reference,
	// view graph-bicep-1.0): applications (uniqueName, displayName, signInAudience,
	// api.requestedAccessTokenVersion) and servicePrincipals (appId), as in the extension's
	// quickstart application-serviceprincipal-create-client-resource.
	"Microsoft.Graph/applications":      "v1.0",
	"Microsoft.Graph/servicePrincipals": "v1.0",
	"Microsoft.Graph/appRoleAssignedTo": "v1.0",
}

// graphExtension is the Microsoft Graph Bicep extension's v1.0 types, GA since 1.0.0.
const graphExtension = "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0"

var (
	typeRef     = regexp.MustCompile(`'([A-Za-z]+\.[A-Za-z.]+(?:/[A-Za-z]+)+)@([A-Za-z0-9.-]+)'`)
	resourceRef = regexp.MustCompile(`(?m)^\s*resource\s+\w+\s+'([^']*)'`)
	moduleRef   = regexp.MustCompile(`(?m)^\s*module\s+\w+\s+'([^']*)'`)
	extensionRe = regexp.MustCompile(`(?m)^\s*extension\s+(\S+)`)
	paramDecl   = regexp.MustCompile(`(?m)^param\s+(\w+)\s+\w+(\s*=)?`)
	paramSet    = regexp.MustCompile(`(?m)^param\s+(\w+)\s*=`)
)

// TestResourceVersions checks every '<type>@<version>' in the Bicep against the versions
// verified above, so a typo or an unchecked upgrade fails here rather than in Azure, and
// refuses preview API versions. Every resource declaration names its full type (no short
// child types), so the check sees them all.
func TestResourceVersions(t *testing.T) {
	files := bicepFiles(t, moduleRoot(t))
	used := map[string]bool{}
	for _, f := range files {
		src := f.codeOnly()
		for _, m := range resourceRef.FindAllStringSubmatch(src, -1) {
			if !typeRef.MatchString("'" + m[1] + "'") {
				t.Errorf("%s: resource type %q: write the full type with its API version (no short child types)", f.Path, m[1])
			}
		}
		for _, m := range typeRef.FindAllStringSubmatch(src, -1) {
			typ, version := m[1], m[2]
			used[typ] = true
			if strings.Contains(strings.ToLower(version), "preview") {
				t.Errorf("%s: %s@%s is a preview API version", f.Path, typ, version)
			}
			want, ok := verifiedVersions[typ]
			switch {
			case !ok:
				t.Errorf("%s: %s@%s: type not among the verified ones; check its API version and add it", f.Path, typ, version)
			case version != want:
				t.Errorf("%s: %s@%s, verified version is %s", f.Path, typ, version, want)
			}
		}
	}
	for _, typ := range sortedKeys(verifiedVersions) {
		if !used[typ] {
			t.Errorf("%s is verified but no longer used: drop it from the table", typ)
		}
	}

	// The Graph extension: a GA types version, by the alias the templates use.
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "infra", "bicep", "bicepconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Extensions map[string]string `json:"extensions"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("bicepconfig.json: %v", err)
	}
	if got := cfg.Extensions["microsoftGraphV1"]; got != graphExtension {
		t.Errorf("bicepconfig.json: microsoftGraphV1 is %q, want %q", got, graphExtension)
	}
	for _, f := range files {
		for _, m := range extensionRe.FindAllStringSubmatch(f.codeOnly(), -1) {
			if _, ok := cfg.Extensions[m[1]]; !ok {
				t.Errorf("%s: extension %s is not defined in bicepconfig.json", f.Path, m[1])
			}
		}
	}
}

// TestBicepStructure checks what can be checked without a Bicep compiler: brackets pair
// up (bicepFiles fails otherwise), modules exist, parameters and the parameters file
// agree, the queues and the table are the ones the binary and the functions use, every
// role assignment names its principal type, and the settings that make it a Flex
// Consumption custom handler without secrets are there.
func TestBicepStructure(t *testing.T) {
	root := moduleRoot(t)
	files := bicepFiles(t, root)
	main := file(t, files, "infra/bicep/main.bicep")

	t.Run("modules exist", func(t *testing.T) {
		for _, f := range files {
			for _, m := range moduleRef.FindAllStringSubmatch(f.codeOnly(), -1) {
				p := filepath.Join(root, filepath.FromSlash(path.Join(path.Dir(f.Path), m[1])))
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s: module %s: %v", f.Path, m[1], err)
				}
			}
		}
	})

	t.Run("parameters file", func(t *testing.T) {
		params := file(t, files, "infra/bicep/main.bicepparam")
		src := params.codeOnly()
		if !regexp.MustCompile(`(?m)^using\s+'main\.bicep'`).MatchString(src) {
			t.Errorf("main.bicepparam does not say using 'main.bicep'")
		}
		declared, required := map[string]bool{}, map[string]bool{}
		for _, m := range paramDecl.FindAllStringSubmatch(main.codeOnly(), -1) {
			declared[m[1]] = true
			if m[2] == "" {
				required[m[1]] = true
			}
		}
		set := map[string]bool{}
		for _, m := range paramSet.FindAllStringSubmatch(src, -1) {
			set[m[1]] = true
			if !declared[m[1]] {
				t.Errorf("main.bicepparam sets %s, which main.bicep does not declare", m[1])
			}
		}
		for _, p := range sortedKeys(required) {
			if !set[p] {
				t.Errorf("main.bicep's parameter %s has no default and main.bicepparam does not set it", p)
			}
		}
	})

	t.Run("queues and table", func(t *testing.T) {
		got := stringList(t, main, "queueNames")
		slices.Sort(got)
		var want, lines []string
		for _, jq := range queue.JobQueues {
			want = append(want, jq.Queue, jq.Queue+queue.PoisonSuffix)
			lines = append(lines, fmt.Sprintf("  '%s'\n  '%s%s'", jq.Queue, jq.Queue, queue.PoisonSuffix))
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("main.bicep queueNames differ from the job table's queues (internal/queue) and their -poison queues (-table +bicep):\n%s\nwant:\nvar queueNames = [\n%s\n]",
				diff, strings.Join(lines, "\n"))
		}
		var functions []string
		for _, fn := range repoFunctions(t, root) {
			if b := fn.trigger(t); b.Type == "queueTrigger" {
				functions = append(functions, b.QueueName, b.QueueName+queue.PoisonSuffix)
			}
		}
		slices.Sort(functions)
		if diff := cmp.Diff(functions, got); diff != "" {
			t.Errorf("main.bicep queueNames differ from the functions' queues and their -poison queues (-functions +bicep):\n%s", diff)
		}
		def := regexp.MustCompile(`(?m)^param\s+tableName\s+string\s*=\s*'([^']*)'`).FindStringSubmatch(main.codeOnly())
		if def == nil || def[1] != config.DefaultTableName {
			t.Errorf("main.bicep's tableName default is %v, want the binary's default %q", def, config.DefaultTableName)
		}
	})

	t.Run("role assignments", func(t *testing.T) {
		decl := regexp.MustCompile(`(?m)^resource\s+(\w+)\s+'Microsoft\.Authorization/roleAssignments@[^']*'\s*=`)
		n := 0
		for _, f := range files {
			for _, m := range decl.FindAllStringSubmatchIndex(f.codeOnly(), -1) {
				n++
				body := f.block(t, m[1])
				if !strings.Contains(body, "principalType: 'ServicePrincipal'") {
					t.Errorf("%s: role assignment %s has no principalType: 'ServicePrincipal' (a new identity may not have replicated; the type makes ARM wait)", f.Path, f.Src[m[2]:m[3]])
				}
			}
		}
		// The roles the app needs, where it needs them.
		for _, r := range []struct{ file, id, role string }{
			{"infra/bicep/modules/app-storage.bicep", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner"},
			{"infra/bicep/modules/app-storage.bicep", "974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor"},
			{"infra/bicep/modules/app-storage.bicep", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Storage Table Data Contributor"},
			{"infra/bicep/modules/monitoring.bicep", "3913510d-42f4-4e42-8a64-420c390055eb", "Monitoring Metrics Publisher"},
			{"infra/bicep/modules/platform-storage.bicep", "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor"},
		} {
			if !strings.Contains(file(t, files, r.file).codeOnly(), "'"+r.id+"'") {
				t.Errorf("%s does not assign %s (%s)", r.file, r.role, r.id)
			}
		}
		if n < 3 {
			t.Errorf("found %d role assignments", n)
		}
	})

	// The environment default has one container per organization, which the handler
	// creates with the identity's Storage Blob Data Contributor (containers/write): a
	// container in the template would be one that every organization's SAS could reach.
	t.Run("environment default without a shared container", func(t *testing.T) {
		src := file(t, files, "infra/bicep/modules/platform-storage.bicep").codeOnly()
		if strings.Contains(src, "blobServices/containers@") {
			t.Error("platform-storage.bicep declares a container: each organization's is created by the handler")
		}
		if def := regexp.MustCompile(`(?m)^param defaultContainerPrefix string = '([^']*)'`).FindStringSubmatch(main.codeOnly()); def == nil || def[1] != config.DefaultContainerPrefix {
			t.Errorf("main.bicep's defaultContainerPrefix default is %v, want the binary's default %q", def, config.DefaultContainerPrefix)
		}
	})

	// The platform API's app registration, for workload identities: multi-tenant (each
	// customer installs it in their tenant), v2.0 tokens (the handler refuses v1.0), its
	// client id the audience (no identifier URI), a service principal at home, and its
	// client id handed to the handler.
	t.Run("platform API app registration", func(t *testing.T) {
		src := file(t, files, "infra/bicep/modules/api-app.bicep").codeOnly()
		for _, want := range []string{
			"extension microsoftGraphV1", "resource api 'Microsoft.Graph/applications@v1.0' = {",
			"signInAudience: 'AzureADMultipleOrgs'", "requestedAccessTokenVersion: 2",
			"resource apiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {", "appId: api.appId",
			"output appId string = api.appId",
		} {
			if !strings.Contains(src, want) {
				t.Errorf("api-app.bicep lacks %s", want)
			}
		}
		for _, banned := range []string{"identifierUris", "AzureADMyOrg", "requestedAccessTokenVersion: 1", "passwordCredentials", "keyCredentials"} {
			if strings.Contains(src, banned) {
				t.Errorf("api-app.bicep has %s", banned)
			}
		}
		m := main.codeOnly()
		for _, want := range []string{
			"module apiApp 'modules/api-app.bicep' = if (workloadIdentities) {",
			"apiAppId: workloadIdentities ? apiApp.outputs.appId : ''",
			"output apiAppId string = workloadIdentities ? apiApp.outputs.appId : ''",
		} {
			if !strings.Contains(m, want) {
				t.Errorf("main.bicep lacks %s", want)
			}
		}
		fa := file(t, files, "infra/bicep/modules/function-app.bicep").codeOnly()
		if !regexp.MustCompile(`name: '` + config.KeyAPIAppID + `'\s+value: apiAppId\b`).MatchString(fa) {
			t.Errorf("function-app.bicep does not set %s to the apiAppId parameter", config.KeyAPIAppID)
		}
	})

	t.Run("flex consumption without secrets", func(t *testing.T) {
		all := ""
		for _, f := range files {
			all += f.codeOnly() + "\n"
		}
		for _, want := range []string{
			"name: 'FC1'", "tier: 'FlexConsumption'", "kind: 'functionapp,linux'",
			"type: 'blobContainer'", "type: 'UserAssignedIdentity'", "userAssignedIdentityResourceId: identityId",
			"name: 'custom'", "version: '1.0'", "instanceMemoryMB: instanceMemoryMB", "maximumInstanceCount: maximumInstanceCount",
			"DisableLocalAuth: true", "'ClientId=${identityClientId};Authorization=AAD'",
			"value: 'managedidentity'", "'https://%s.blob.${environment().suffixes.storage}/'",
			"value: homeTenantId", "homeTenantId: tenant().tenantId",
			"appId: '00000003-0000-0000-c000-000000000000'", "'Application.ReadWrite.OwnedBy'",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("the Bicep lacks %s", want)
			}
		}
		for _, rel := range []string{"infra/bicep/modules/app-storage.bicep", "infra/bicep/modules/platform-storage.bicep"} {
			if !strings.Contains(file(t, files, rel).codeOnly(), "allowSharedKeyAccess: false") {
				t.Errorf("%s: the storage account allows shared key access", rel)
			}
		}
		for _, banned := range []string{"listKeys(", "AccountKey=", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "@secure()"} {
			if strings.Contains(all, banned) {
				t.Errorf("the Bicep contains %s: no keys or secrets, and Flex Consumption takes its runtime from functionAppConfig", banned)
			}
		}
	})
}

// TestBicepScanner checks the bracket and comment scanner the Bicep checks rely on.
func TestBicepScanner(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		ok        bool
	}{
		{"balanced", "var a = {\n  b: [\n    'x'\n  ]\n}\n", true},
		{"brackets in strings and comments", "var a = '}]' // ) {\n/* ] */ var b = [1]\n", true},
		{"interpolation", "var a = 'x${f('}')}y'\nvar b = {}\n", true},
		{"escaped quote", "var a = 'it\\'s {'\n", true},
		{"multi-line string", "var a = '''\n{ ' \n'''\n", true},
		{"unclosed", "var a = {\n", false},
		{"crossed", "var a = [ } ]\n", false},
		{"unterminated string", "var a = 'x\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := scanBicep(tc.src)
			if (err == nil) != tc.ok {
				t.Fatalf("scanBicep: err %v, want ok=%v", err, tc.ok)
			}
		})
	}
	code, comment, err := scanBicep("var a = 'x' // c\n")
	if err != nil {
		t.Fatal(err)
	}
	f := bicepFile{Path: "x.bicep", Src: "var a = 'x' // c\n", code: code, comment: comment}
	if got := f.codeOnly(); got != "var a = 'x'     \n" {
		t.Errorf("codeOnly = %q", got)
	}
}

// TestBicepDefaultsAreTheBinarys: the app settings the Bicep gives a window, interval or
// schedule by default are the binary's own defaults (internal/config), so a deployment that
// sets none of them behaves as the binary documents.
func TestBicepDefaultsAreTheBinarys(t *testing.T) {
	files := bicepFiles(t, moduleRoot(t))
	main := file(t, files, "infra/bicep/main.bicep").codeOnly()
	app := file(t, files, "infra/bicep/modules/function-app.bicep").codeOnly()
	// deployed returns the value the Bicep gives setting: a literal in the app settings, or
	// the default of the main.bicep parameter passed there under the same name.
	deployed := func(setting string) string {
		m := regexp.MustCompile(`name:\s*'` + regexp.QuoteMeta(setting) + `'\s*value:\s*('([^']*)'|(\w+))`).FindStringSubmatch(app)
		switch {
		case m == nil:
			t.Errorf("function-app.bicep sets no %s", setting)
			return ""
		case m[3] == "":
			return m[2]
		}
		def := regexp.MustCompile(`(?m)^param\s+` + m[3] + `\s+string\s*=\s*'([^']*)'`).FindStringSubmatch(main)
		if def == nil {
			t.Errorf("%s comes from parameter %s, which has no string default in main.bicep", setting, m[3])
			return ""
		}
		return def[1]
	}
	for setting, want := range map[string]time.Duration{
		config.KeySPPollWindow:             config.DefaultSPPollWindow,
		config.KeyAccessProbeWindow:        config.DefaultAccessProbeWindow,
		config.KeyPropagationGrace:         config.DefaultPropagationGrace,
		config.KeySPPollInterval:           config.DefaultSPPollInterval,
		config.KeyAccessProbeInterval:      config.DefaultAccessProbeInterval,
		config.KeyCreateGuardDelay:         config.DefaultCreateGuardDelay,
		config.KeyResolutionCacheTTL:       config.DefaultResolutionCacheTTL,
		config.KeyWorkloadIdentityCacheTTL: config.DefaultWorkloadIdentityCacheTTL,
		config.KeyHealthInterval:           config.DefaultHealthInterval,
		config.KeyHealthSpread:             config.DefaultHealthSpread,
		config.KeyHealthRecheck:            config.DefaultHealthRecheck,
		config.KeyReconcileInterval:        config.DefaultReconcileInterval,
	} {
		v := deployed(setting)
		if d, err := time.ParseDuration(v); err != nil || d != want {
			t.Errorf("the Bicep sets %s to %q by default; the binary's default is %v", setting, v, want)
		}
	}
	for setting, want := range map[string]string{config.KeyHealthSchedule: config.DefaultHealthSchedule,
		config.KeyReconcileSchedule: config.DefaultReconcileSchedule} {
		if v := deployed(setting); v != want {
			t.Errorf("the Bicep sets %s to %q by default; the binary's default is %q", setting, v, want)
		}
	}
}
