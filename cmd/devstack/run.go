package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// runStack is `make run` (and, with -stack-only, `make stack`): the whole product on this
// machine until Ctrl-C. Azurite keeps its data in .local/azurite between runs. If one of
// the processes ends, the others are stopped too.
func runStack(ctx context.Context, d *dev, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	stackOnly := fs.Bool("stack-only", false, "Azurite and the stand-in only, no handler (make stack)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ports, base, err := runPorts()
	if err != nil {
		return err
	}
	// Fail before building anything when a port is taken.
	need := []stack.NamedPort{{Name: "Azurite blob", Port: ports.AzuriteBlob}, {Name: "Azurite queue", Port: ports.AzuriteQueue},
		{Name: "Azurite table", Port: ports.AzuriteTable}, {Name: "Entra/Graph stand-in", Port: ports.StandIn},
		{Name: "storage front", Port: ports.StorageFront}}
	if !*stackOnly {
		need = append(need, stack.NamedPort{Name: "handler", Port: ports.Handler})
	}
	if err := stack.RequireFree(need...); err != nil {
		return err
	}
	if err := d.ensureKeys(); err != nil {
		return err
	}
	bin := filepath.Join(d.root(), "bin")
	bins := []stack.Binary{stack.StandInBinary}
	if !*stackOnly {
		bins = append(bins, stack.HandlerBinary)
	}
	for _, b := range bins {
		if b == stack.HandlerBinary {
			say("(the first build of bin/handler compiles msgraph-sdk-go: about 5 min on 2 cores)")
		}
		start := time.Now()
		say("go build -o bin/%s %s", b.Name, b.Package)
		if err := stack.Build(ctx, d.launcher, d.root(), os.Getenv("GOFLAGS"), bin, b); err != nil {
			return err
		}
		say("go build %s: done in %s", b.Package, time.Since(start).Round(time.Second))
	}

	// A stack on ports of its own keeps its data and logs apart from the default one's.
	suffix := ""
	if base != 0 {
		suffix = "-" + strconv.Itoa(base)
	}
	logs := d.files.LogDir()
	az := stack.NewAzurite(d.files, ports, filepath.Join(d.files.Local(), "azurite"+suffix), filepath.Join(logs, "azurite"+suffix+".log"))
	si := stack.NewStandIn(d.files, ports, filepath.Join(bin, stack.StandInBinary.Name), az.Endpoints().Blob, filepath.Join(logs, "localazure"+suffix+".log"))
	for _, log := range []string{az.Log, si.Log} {
		if err := truncate(log); err != nil {
			return err
		}
	}
	say("starting Azurite on https://127.0.0.1:%d-%d (log: %s)", az.Blob, az.Table, d.rel(az.Log))
	if err := az.Start(ctx, d.launcher); err != nil {
		return err
	}
	say("starting the Entra/Graph stand-in on %s (log: %s)", si.URL(), d.rel(si.Log))
	siProc, err := si.Start(ctx, d.launcher)
	if err != nil {
		return err
	}
	procs := []*stack.Process{az.Process(), siProc}
	// The demo customer's one step for workload identities, done here so that the demo's
	// commands below work as printed: install the platform API in their tenant.
	client, err := stack.Client(d.files.CertFile())
	if err != nil {
		return err
	}
	if err := stack.InstallAPI(ctx, client, si.ControlURL(), stack.CustomerTenant1); err != nil {
		return err
	}

	handlerURL := "http://" + stack.Addr(ports.Handler)
	var tok string
	var wizardLinks []string
	if !*stackOnly {
		say("starting bin/handler serve on %s", handlerURL)
		h, err := d.launcher.Start(stack.Command{Name: "bin/handler serve", Path: filepath.Join(bin, stack.HandlerBinary.Name),
			Args: []string{"serve"}, Env: d.handlerEnv(ports, az.Endpoints()), Dir: d.root()})
		if err != nil {
			return err
		}
		if err := stack.HandlerReady(ctx, h, handlerURL); err != nil {
			return err
		}
		procs = append(procs, h)
		if tok, err = d.mintToken(stack.DemoOrg, "local-user", 12*time.Hour); err != nil {
			return fmt.Errorf("demo token: %w", err)
		}
		// The wizard page signed in for each demo organization: a token of its own in the
		// link's fragment.
		for _, org := range []string{stack.DemoOrg, stack.SecondDemoOrg} {
			t, err := d.mintToken(org, "local-user", 12*time.Hour)
			if err != nil {
				return fmt.Errorf("wizard token: %w", err)
			}
			wizardLinks = append(wizardLinks, fmt.Sprintf("  %-16s %s", org, stack.WizardURL(handlerURL, org, t)))
		}
	}

	e := az.Endpoints()
	fmt.Printf(`
The local stack is up; Ctrl-C stops everything.

  Azurite          blob %s  queue %s  table %s
                   accounts %s (platform), %s and %s (customers); log %s
  Entra/Graph      %s  home tenant %s; log %s
  control          %s  (plays the customer: install an SP, grant a role)
  storage front    https://<account>.blob.localhost:%d -> %s  (RBAC in front of Azurite's customer accounts)
  customer tenants %s  %s
  TLS              curl --cacert %s
`, e.Blob, e.Queue, e.Table, stack.PlatformAccountName, stack.CustomerAccount1Name, stack.CustomerAccount2Name, d.rel(az.Log),
		si.URL(), stack.HomeTenantID, d.rel(si.Log), si.ControlURL(), ports.StorageFront, si.StorageFrontAddr,
		stack.CustomerTenant1, stack.CustomerTenant2, d.rel(d.files.CertFile()))
	if !*stackOnly {
		fmt.Printf(`  API              %s

The wizard page, signed in for each demo organization (open a link in a browser on this
machine; the customer panel beside the wizard plays the customer's Azure):

%s

Demo API token for org %s, then a first call:

export TOKEN='%s'
curl -s -H "Authorization: Bearer $TOKEN" -H "X-Activeloop-Org-Id: %s" %s/organizations/%s/credentials

`, handlerURL, strings.Join(wizardLinks, "\n"), stack.DemoOrg, tok, stack.DemoOrg, handlerURL, stack.DemoOrg)
		demo := stack.WorkloadDemo{HandlerURL: handlerURL, StandInURL: si.URL(), CertFile: d.rel(d.files.CertFile()), Org: stack.DemoOrg}
		cmds := demo.Commands()
		fmt.Printf(`A workload identity (docs/WORKLOAD_IDENTITIES.md): the managed identity %s (client id %s) of
customer tenant %s calls the API with its own Entra token, no platform token in the workload.
The customer's one step in their tenant, az ad sp create --id %s, is done: make run
installed the platform API there through the stand-in's control endpoint.

# 1. register it with the organization, as a platform user ($TOKEN above); 409 if an earlier run did (Azurite keeps its data)
%s

# 2. get a token as the workload, from its identity endpoint (what ManagedIdentityCredential calls)
%s

# 3. call /creds with it (502 sas_issuance_failed for the first %s after start, while the platform identity's role propagates)
%s

`, stack.WorkloadIdentityName, stack.WorkloadIdentityClientID, stack.CustomerTenant1, stack.APIAppID, cmds[0], cmds[1],
			si.Propagation, cmds[2])
	}

	// Until Ctrl-C (launch stops everything) or until one of the processes ends.
	ended := stack.WaitAny(ctx, procs...)
	if ended == nil {
		return nil
	}
	_, err = ended.Exited()
	return fmt.Errorf("%s exited (%s); stopping the rest%s", ended.Name, stack.ExitError(err), ended.LogTail(40))
}

// truncate empties a log file, creating it and its directory.
func truncate(file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, nil, 0o644)
}
