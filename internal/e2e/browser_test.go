package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/activeloopai/azcreds/internal/dev/stack"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// TestWizardPageInBrowser clicks through the wizard page (/wizard/) in headless Chromium
// against the real handler and stand-in, the customer's steps played in the page's own
// customer panel: the happy path to verified, the org default on and off, a workspace
// registration that must pick one of two verified credentials and a first /creds; the
// Reader path to "Role is not sufficient"; the admin consent refused then accepted, the
// portal button and a grant at container scope; the firewall (then a revoke and a delete);
// and no role at all until the time-out, followed by Save anyway. Each path runs in a tab
// of its own, for an organization of its own, signed in by the link `make run` prints;
// each end screen is saved under .local/screenshots/ and its text checked.
func TestWizardPageInBrowser(t *testing.T) {
	t.Parallel()
	browser := startBrowser(t)
	env := testenv.Azurite(t)
	si := startStandIn(t, env, 2*time.Second)
	h := startHandler(t, env, si, defaultSettings())
	// A short window: with no role at all, 403 means "not yet" within the grace, then "no
	// role visible yet" (hint no_role) until the deadline, and the probe times out.
	// Tables and queues of its own (another account), so neither handler takes the other's
	// jobs.
	timeouts := defaultSettings()
	timeouts.probeWindow, timeouts.grace = 10*time.Second, 4*time.Second
	timeouts.storageAccount = "custacct2"
	slow := startHandler(t, env, si, timeouts)
	shots := screenshotDir(t)

	t.Run("happy path", func(t *testing.T) {
		t.Parallel()
		p := openWizard(t, browser, h)
		container := testenv.UniqueName(t, "page")
		name := "happy-" + container
		// A second verified credential in the organization, made through the API while the
		// page onboards the first: a workspace registration then has to pick one of them.
		second, secondContainer := make(chan error, 1), testenv.UniqueName(t, "two")
		go func() { second <- verifiedThroughAPI(p.api, si.customer, "custacct1", secondContainer) }()

		// Step 1, with the API's validation message under the field it names.
		p.create(name, "az://Bloblake/"+container)
		p.waitText(`#create-form .field-error[data-for="base_path"]`, `storage account "Bloblake" contains invalid character "B"`, 10*time.Second)
		p.screenshot(filepath.Join(shots, "wizard-step1-create.png"))
		p.shots = shots // the steps on the way, for people reading the screens
		p.onboardToSPVerified("az://custacct1/"+container+"/lake", container)
		p.shots = ""

		// Step 4 in the customer panel, step 5 in the wizard.
		p.waitText("#role-command", "az role assignment create", time.Second)
		p.click("#cust-grant")
		p.waitText("#cust-log", "granted at account scope", 10*time.Second)
		p.click("#cust-fill-storage")
		p.click("#verify-access")
		p.waitText("#outcome", "Credential connected.", 30*time.Second)
		p.waitText("#checks", "pass", time.Second)

		// Step 6: the toggle sets the org default (PUT) and clears it (DELETE), and the page
		// shows what the API then holds.
		id := p.credentialID(name)
		p.click("#org-default")
		p.waitText("#credential-list", "org default", 10*time.Second)
		p.waitJS(`document.querySelector("#org-default").checked && !document.querySelector("#org-default").disabled`, 5*time.Second, "the toggle on")
		if c := p.detail(id); !c.IsOrgDefault {
			t.Errorf("the toggle is on, the API has no org default: %+v", c)
		}
		p.click("#org-default")
		p.waitJS(`(() => { const t = document.querySelector("#org-default");
			return !!t && !t.checked && !t.disabled && !document.querySelector("#credential-list").innerText.includes("org default"); })()`,
			10*time.Second, "the toggle off and no org default in the list")
		if c := p.detail(id); c.IsOrgDefault {
			t.Errorf("the toggle is off, the API still has the org default: %+v", c)
		}

		// A workspace: with two verified credentials the registration must name one, and the
		// page offers the API's candidates.
		if err := <-second; err != nil {
			t.Fatalf("the second credential: %v", err)
		}
		p.typeIn(`#workspace-form [name="workspace"]`, "ws-"+container)
		p.click(`#workspace-form [name="register"]`)
		p.waitText("#workspace-error", "Pick one:", 10*time.Second)
		p.waitJS(fmt.Sprintf(`(() => { const b = [...document.querySelectorAll("#ws-candidates button")];
			return b.length === 2 && b.some((x) => x.dataset.id === %s && x.innerText === %s) && b.some((x) => x.innerText.startsWith("second-")); })()`,
			quote(id), quote(name)), time.Second, "two candidates, the page's credential one of them")
		p.screenshot(filepath.Join(shots, "wizard-candidates.png"))
		p.click(fmt.Sprintf(`#ws-candidates button[data-id=%s]`, quote(id)))
		p.waitText("#ws-table", "linked to "+name, 10*time.Second)
		p.waitText("#ws-table", "unlocked", time.Second)
		p.click("#ws-creds")
		p.waitText("#creds-result", "/creds issued a SAS for table smoke_test", 15*time.Second)
		p.waitText("#creds-result", "workspace", time.Second)
		p.waitText("#ws-table", "locked since", 10*time.Second)
		p.waitText("#ws-table", "az://custacct1/"+container+"/lake", time.Second)
		p.screenshot(filepath.Join(shots, "wizard-verified.png"))
		if text := p.text("#creds-result"); strings.Contains(text, "sig=") || !strings.Contains(text, "hidden (") {
			t.Errorf("the /creds result shows the SAS: %q", text)
		}
	})

	t.Run("Reader is not sufficient", func(t *testing.T) {
		t.Parallel()
		p := openWizard(t, browser, h)
		container := testenv.UniqueName(t, "read")
		p.create("reader-"+container, "az://custacct1/"+container)
		p.onboardToSPVerified("", container)
		p.choose("#cust-role", "Storage Blob Data Reader")
		p.click("#cust-grant")
		p.waitText("#cust-log", "Storage Blob Data Reader granted at account scope", 10*time.Second)
		p.click("#cust-fill-storage")
		p.click("#verify-access")
		p.waitText("#outcome-title", "Role is not sufficient.", 40*time.Second)
		p.waitText("#outcome-hint", "Reader", time.Second)
		p.waitText(`#checks [data-check="write"]`, "fail", time.Second)
		p.waitText(`#checks [data-check="list_read"]`, "pass", time.Second)
		p.waitText("#outcome", "AuthorizationPermissionMismatch", time.Second)
		// Back on the storage screen: the customer can fix the role and verify again.
		p.waitVisible("#verify-access")
		p.screenshot(filepath.Join(shots, "wizard-reader.png"))
	})

	t.Run("admin consent, portal and container scope", func(t *testing.T) {
		t.Parallel()
		p := openWizard(t, browser, h)
		container := testenv.UniqueName(t, "cons")
		p.create("consent-"+container, "az://custacct1/"+container)
		p.waitText("#install-command", "az ad sp create --id ", 10*time.Second)
		if p.eval(`String(!!document.querySelector("#portal-button"))`) != "false" {
			t.Error("the portal button shows before the service principal is found")
		}
		p.click("#cust-container-create")
		p.waitText("#cust-log", "Container "+container+" created", 10*time.Second)
		tenant := p.eval(`document.querySelector("#cust-tenant").value`)
		if href := p.eval(`document.querySelector("#admin-consent-link").getAttribute("href")`); !strings.HasPrefix(href, "/wizard/consent/organizations/adminconsent?") {
			t.Errorf("the admin-consent link is %q, not on the page's origin", href)
		}

		// The administrator refuses: back on the wizard with the error.
		p.waitText("#cust-log", "The administrator will accept the admin consent in tenant "+tenant, 10*time.Second)
		p.choose("#cust-consent-answer", "refuse")
		p.waitText("#cust-log", "The administrator will refuse the admin consent", 10*time.Second)
		p.follow("#admin-consent-link")
		p.waitText("#outcome-title", "Admin consent was not granted.", 10*time.Second)
		p.waitText("#outcome-message", "AADSTS65004", time.Second)
		p.waitText("#notice", "Admin consent was not granted: AADSTS65004", time.Second)
		p.screenshot(filepath.Join(shots, "wizard-consent-refused.png"))

		// The administrator accepts: back on the wizard with the tenant, submitted from there.
		p.waitText("#cust-log", "The administrator will accept the admin consent in tenant "+tenant, 10*time.Second)
		p.follow("#admin-consent-link")
		p.waitText("#notice", "granted consent", 10*time.Second)
		// The notice can come before the tenant step is drawn: wait for the form.
		p.waitJS(`(() => { const el = document.querySelector("#tenant-form [name=tenant_id]"); return !!el && el.value !== ""; })()`,
			10*time.Second, "the tenant form, back from the consent")
		if got := p.eval(`document.querySelector("#tenant-form [name=tenant_id]").value`); got != tenant {
			t.Errorf("back from the consent, the tenant form holds %q, want %q", got, tenant)
		}
		p.click("#tenant-submit")
		p.waitText("#sp-found", "Service principal found", 20*time.Second)

		// Step 4: the portal button, to the API's portal link (the storage accounts, until
		// the storage details name the account).
		id := p.credentialID("consent-" + container)
		c := p.detail(id)
		p.waitVisible("#portal-button")
		if href := p.eval(`document.querySelector("#portal-button").href`); href != c.PortalURL || !strings.Contains(href, "#browse/Microsoft.Storage%2FStorageAccounts") {
			t.Errorf("step 4: the portal button leads to %q, the API says %q", href, c.PortalURL)
		}
		p.waitText("#portal-where", "open custacct1", time.Second)

		// A Contributor grant at container scope: too narrow for a user delegation key.
		p.choose("#cust-scope", "container")
		p.click("#cust-grant")
		p.waitText("#cust-log", "Storage Blob Data Contributor granted at container scope", 10*time.Second)
		p.click("#cust-fill-storage")
		p.click("#verify-access")
		p.waitText("#outcome-title", "Role is not sufficient.", 40*time.Second)
		p.waitText(`#outcome-hint[data-hint="container_scope"]`, "granted on the container, which is too narrow", time.Second)
		p.waitText(`#checks [data-check="user_delegation_key"]`, "fail", time.Second)
		p.waitVisible("#verify-access")
		c = p.detail(id)
		if c.State != "sp_verified" || c.Status() != "role_not_sufficient" || c.LastErrorHint != "container_scope" {
			t.Errorf("the API says %s/%s hint %q", c.State, c.Status(), c.LastErrorHint)
		}
		p.waitText("#outcome-message", c.LastError, time.Second)
		// Now the portal button leads to the account's access control.
		if href := p.eval(`document.querySelector("#portal-button").href`); href != c.PortalURL || !strings.HasSuffix(href, "/storageAccounts/custacct1/iam") {
			t.Errorf("after the storage details: the portal button leads to %q, the API says %q", href, c.PortalURL)
		}
		p.waitText("#portal-where", "Access control (IAM) of custacct1", time.Second)
		p.screenshot(filepath.Join(shots, "wizard-container-scope.png"))
	})

	t.Run("firewall, revoke and delete", func(t *testing.T) {
		t.Parallel()
		p := openWizard(t, browser, h)
		container := testenv.UniqueName(t, "wall")
		p.create("wall-"+container, "az://custacct2/"+container)
		p.onboardToSPVerified("", container)
		p.choose("#cust-account", "custacct2")
		p.click("#cust-firewall")
		p.waitText("#cust-log", "Firewall of custacct2 on", 10*time.Second)
		p.click("#cust-grant")
		p.waitText("#cust-log", "granted at account scope", 10*time.Second)
		p.click("#cust-fill-storage")
		p.click("#verify-access")
		p.waitText("#outcome-title", "Blocked by the storage account's network rules.", 40*time.Second)
		p.waitText("#outcome-hint", "firewall", time.Second)
		p.click("#cust-firewall")
		p.waitText("#cust-log", "Firewall of custacct2 off", 10*time.Second)
		p.click("#cust-assignments button")
		p.waitText("#cust-log", "revoked", 10*time.Second)
		p.waitText("#cust-assignments", "revoking", 10*time.Second)
		p.click(`#credential-list tbody .danger`)
		p.waitText("#credential-list", "Really delete?", time.Second)
		p.click(`#credential-list tbody .danger`)
		p.waitText("#credential-list", "No credentials yet", 10*time.Second)
	})

	t.Run("timeout then Save anyway", func(t *testing.T) {
		t.Parallel()
		p := openWizard(t, browser, slow)
		container := testenv.UniqueName(t, "late")
		p.create("late-"+container, "az://custacct1/"+container)
		p.onboardToSPVerified("", container)
		// No role granted at all: the probe waits for one until its window closes, saying
		// after the grace that no role is visible yet.
		p.click("#cust-fill-storage")
		p.click("#verify-access")
		p.waitText("#outcome-title", "Waiting for role propagation.", 15*time.Second)
		// Every headline the verify step shows on its way, to check it only ever waits.
		// A mutation observer, not a timer: a timer in a page the browser deems idle may run
		// late and miss a headline.
		p.eval(`(() => { window.seenTitles = new Set(); const note = () => { const el = document.querySelector("#outcome-title");
			if (el) window.seenTitles.add(el.innerText); }; note();
			new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true}); return ""; })()`)
		p.waitJS(`(() => { const t = document.querySelector("#outcome-title"), hint = document.querySelector("#outcome-hint");
			return !!t && t.innerText === "Waiting for role propagation." && !!hint && hint.dataset.hint === "no_role"; })()`,
			15*time.Second, "the no-role hint while the probe waits")
		p.waitText("#outcome", "checking until", time.Second)
		p.waitText("#outcome-title", "Timed out.", 30*time.Second)
		p.waitText(`#outcome-hint[data-hint="no_role"]`, "No role is visible for this service principal yet", time.Second)
		p.waitText("#outcome-message", "az role assignment list --assignee", time.Second)
		p.waitVisible("#retry")
		p.waitVisible("#save-anyway")
		if seen := p.eval(`[...window.seenTitles.add(document.querySelector("#outcome-title").innerText)].sort().join("|")`); seen != "Timed out.|Waiting for role propagation." {
			t.Errorf("the verify step showed %q on its way to the time-out", seen)
		}
		p.screenshot(filepath.Join(shots, "wizard-timed-out.png"))
		p.click("#save-anyway")
		p.waitText("#outcome", "Saved without verification.", 10*time.Second)
		p.waitText("#credential-list", "unverified_saved", 10*time.Second)
		p.screenshot(filepath.Join(shots, "wizard-saved-anyway.png"))
	})
}

// create fills step 1's form with name and basePath and submits it.
func (p *wizardPage) create(name, basePath string) {
	p.t.Helper()
	p.click("#add-credential")
	p.typeIn(`#create-form [name="name"]`, name)
	p.typeIn(`#create-form [name="base_path"]`, basePath)
	p.click("#create-submit")
}

// screenshotDir is .local/screenshots in the module root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	root, err := stack.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(stack.Files{Root: root}.Local(), "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startBrowser starts headless Chromium for the test. Without one it skips, saying why,
// except under CI=true, where a missing browser is a failure.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := stack.FindBrowser()
	if path == "" {
		msg := "no Chromium for the browser tests (looked for chromium, chromium-browser, google-chrome on PATH): " +
			"`make test` installs Debian's chromium when it runs as root with apt-get"
		if v := os.Getenv(stack.EnvBrowser); v != "" {
			msg = "no Chromium for the browser tests: " + stack.EnvBrowser + "=" + v + " is not an executable"
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Flags for a machine with no network beyond loopback: nothing in the background.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 1000),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// wizardPage is one tab on the wizard page.
type wizardPage struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	js  []string // script errors seen in the tab
	// shots, when set, is where onboardToSPVerified saves the screens on its way.
	shots string
	// api is the organization's client, to check the page against what the API holds.
	api *walkthrough.API
}

// openWizard opens a tab on h's wizard page, signed in for a fresh organization by the
// link `make run` prints, and waits until the page has loaded the organization.
func openWizard(t *testing.T, browser context.Context, h *handler) *wizardPage {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	p := &wizardPage{t: t, ctx: ctx}
	_ = os.Remove(p.failedShot()) // a previous run's
	if err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				for _, a := range e.Args {
					msg += string(a.Value) + " " + a.Description
				}
			}
		}
		if msg != "" {
			p.mu.Lock()
			p.js = append(p.js, msg)
			p.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.js {
			t.Errorf("script error on the page: %s", m)
		}
	})
	api := h.api(t)
	p.api = api
	p.run(20*time.Second, chromedp.Navigate(stack.WizardURL(h.url, api.Org, api.Token)))
	p.waitText("#org-name", api.Org, 10*time.Second)
	p.waitText("#credential-list", "No credentials yet", 10*time.Second)
	p.waitVisible("#cust-tenant")
	if u := p.eval(`location.href`); strings.Contains(u, "token") {
		t.Errorf("the token is still in the address bar: %s", u)
	}
	return p
}

// onboardToSPVerified takes a credential just created (base path ok) to sp_verified: when
// basePath is set, the first create failed and is made again with it; then the customer
// creates the container and installs the service principal, and the wizard submits the
// tenant and waits for the service principal.
func (p *wizardPage) onboardToSPVerified(basePath, container string) {
	p.t.Helper()
	if basePath != "" {
		p.clear(`#create-form [name="base_path"]`)
		p.typeIn(`#create-form [name="base_path"]`, basePath)
		p.click("#create-submit")
	}
	p.waitText("#install-command", "az ad sp create --id ", 10*time.Second)
	p.step("wizard-step2-install.png")
	p.waitVisible("#cust-container")
	if got := p.eval(`document.querySelector("#cust-container").value`); got != container {
		p.t.Fatalf("the customer panel's container is %q, want %q", got, container)
	}
	p.click("#cust-container-create")
	p.waitText("#cust-log", "Container "+container+" created", 10*time.Second)
	p.click("#cust-install")
	p.waitText("#cust-log", "Service principal installed", 10*time.Second)
	p.click("#installed-ack")
	p.click("#cust-fill-tenant")
	p.click("#tenant-submit")
	if p.shots != "" {
		p.waitText("#outcome", "Looking for the service principal", 5*time.Second)
		p.step("wizard-step3-tenant.png")
	}
	p.waitText("#sp-found", "Service principal found", 20*time.Second)
	p.step("wizard-step4-5-storage.png")
}

// verifiedThroughAPI takes a new credential on a new container of account to verified
// through the API and the stand-in's control endpoints, as a script would, not the page.
func verifiedThroughAPI(api *walkthrough.API, customer *walkthrough.Customer, account, container string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := customer.CreateContainer(ctx, account, container); err != nil {
		return err
	}
	c, err := api.Create(ctx, "second-"+container, "az://"+account+"/"+container)
	if err != nil {
		return err
	}
	sp, err := customer.InstallServicePrincipal(ctx, tenantA, c.Azure.AppID)
	if err != nil {
		return err
	}
	if _, err := api.SubmitTenant(ctx, c.ID, tenantA); err != nil {
		return err
	}
	if c, err = api.Wait(ctx, c.ID, 200*time.Millisecond, walkthrough.InState("sp_verified", "draft"), nil); err != nil || c.State != "sp_verified" {
		return fmt.Errorf("waiting for sp_verified: %s %v", c.State, err)
	}
	if _, err := customer.GrantRole(ctx, sp, walkthrough.RoleContributor, walkthrough.AccountScope(subscriptionID, resourceGroup, account)); err != nil {
		return err
	}
	if _, err := api.SubmitStorage(ctx, c.ID, walkthrough.StorageForm{SubscriptionID: subscriptionID, ResourceGroup: resourceGroup,
		StorageAccount: account, ContainerName: container}); err != nil {
		return err
	}
	if c, err = api.Wait(ctx, c.ID, 200*time.Millisecond, walkthrough.InState("verified", "sp_verified"), nil); err != nil || c.State != "verified" {
		return fmt.Errorf("waiting for verified: %s/%s %v: %s", c.State, c.Status(), err, c.LastError)
	}
	return nil
}

// detail is the credential id as the API holds it now.
func (p *wizardPage) detail(id string) walkthrough.Credential {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.api.Get(ctx, id)
	if err != nil {
		p.t.Fatalf("GET credential %s: %v", id, err)
	}
	return c
}

// credentialID is the id of the credential the page lists as name.
func (p *wizardPage) credentialID(name string) string {
	p.t.Helper()
	id := p.eval(fmt.Sprintf(`(() => { const row = [...document.querySelectorAll("#credential-list tbody tr")]
		.find((r) => r.querySelector("td").innerText === %s); return row ? row.dataset.id : ""; })()`, quote(name)))
	if id == "" {
		p.fail("the credential list has no " + name)
	}
	return id
}

// follow clicks the link sel and waits until the page it leads to (through any redirects)
// has loaded and drawn the organization again.
func (p *wizardPage) follow(sel string) {
	p.t.Helper()
	p.eval(`(() => { window.leaving = true; return ""; })()`)
	p.click(sel)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
		// Evaluations fail while the old document goes away: try again.
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.leaving && document.readyState === "complete" && !!document.querySelector("#org-name")`))
		cancel()
		if err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			p.fail(fmt.Sprintf("following %s: the page did not load (%v)", sel, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// step saves a screenshot of a step on the way when the test asked for them.
func (p *wizardPage) step(name string) {
	p.t.Helper()
	if p.shots != "" {
		p.screenshot(filepath.Join(p.shots, name))
	}
}

func (p *wizardPage) run(limit time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail(fmt.Sprintf("%v", err))
	}
}

// fail ends the test with what the page shows, and its screenshot next to the others.
func (p *wizardPage) fail(msg string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(p.failedShot(), png, 0o644)
	}
	p.t.Fatalf("%s\n--- the page shows:\n%s", msg, body)
}

// failedShot is where fail saves what the page showed.
func (p *wizardPage) failedShot() string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(p.t.Name())
	return filepath.Join(screenshotDir(p.t), "failed-"+name+".png")
}

func (p *wizardPage) click(sel string) {
	p.t.Helper()
	p.run(10*time.Second, chromedp.Click(chromedp.CSS(sel)))
}

func (p *wizardPage) typeIn(sel, text string) {
	p.t.Helper()
	p.run(10*time.Second, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// clear empties an input as selecting its text and deleting it does.
func (p *wizardPage) clear(sel string) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.value = "";
		el.dispatchEvent(new Event("input", {bubbles: true})); return el.value; })()`, quote(sel))
	if got := p.eval(js); got != "" {
		p.fail(fmt.Sprintf("%s kept %q", sel, got))
	}
}

func (p *wizardPage) waitVisible(sel string) {
	p.t.Helper()
	p.run(10*time.Second, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// choose picks an option of a select, as a person does: the value changes and the page
// hears the change.
func (p *wizardPage) choose(sel, value string) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.value = %s;
		el.dispatchEvent(new Event("change", {bubbles: true})); return el.value; })()`, quote(sel), quote(value))
	if got := p.eval(js); got != value {
		p.fail(fmt.Sprintf("%s has no option %q", sel, value))
	}
}

// waitText waits until the element sel shows text (any text when text is "").
func (p *wizardPage) waitText(sel, text string, limit time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit+5*time.Second)
	defer cancel()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%s); return !!el && el.innerText.includes(%s); })()`, quote(sel), quote(text))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		if !errors.Is(err, chromedp.ErrPollingTimeout) {
			p.fail(fmt.Sprintf("waiting for %q in %s: %v", text, sel, err))
		}
		p.fail(fmt.Sprintf("%s did not show %q within %s; it shows %q", sel, text, limit, p.text(sel)))
	}
}

// waitJS waits until the expression js is true.
func (p *wizardPage) waitJS(js string, limit time.Duration, what string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		p.fail(fmt.Sprintf("waiting for %s: %v", what, err))
	}
}

func (p *wizardPage) text(sel string) string {
	p.t.Helper()
	return p.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%s); return el ? el.innerText : "<no element>"; })()`, quote(sel)))
}

func (p *wizardPage) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// screenshot saves the whole page as file, and beside it, rendered at 60 %, as
// <name>.small.png (the size docs/images/ carries).
func (p *wizardPage) screenshot(file string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	size, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`[document.documentElement.scrollWidth, document.documentElement.scrollHeight]`))
	if err != nil || len(size) != 2 {
		p.t.Fatalf("page size %v: %v", size, err)
	}
	small, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: ptrTo(true), Clip: &page.Viewport{Width: size[0], Height: size[1], Scale: 0.6}})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	})
	if err != nil {
		p.t.Fatalf("small screenshot: %v", err)
	}
	for name, png := range map[string][]byte{file: full, strings.TrimSuffix(file, ".png") + ".small.png": small} {
		if err := os.WriteFile(name, png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.t.Logf("screenshot %s", file)
}

func ptrTo[T any](v T) *T { return &v }

// quote is s as a JavaScript string literal.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
