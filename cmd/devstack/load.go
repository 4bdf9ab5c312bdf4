package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// load is `make load`: the load figures of docs/PERFORMANCE.md on a fresh stack of its
// own ports (AZCREDS_LOAD_PORT_BASE, default 10200, laid out as stack.PortsFrom says), so
// it never meets `make run` or `make test`:
//
//   - Azurite, with a fresh data directory removed at the end;
//   - the storage fault proxy in front of all three services at zero fault rates,
//     counting every storage transaction: the handler's tables and queues, and the
//     customer blob traffic of the access probe (the storage front forwards through it);
//   - the stand-in, with role propagation LOAD_PROPAGATION (default 1s);
//   - the handler with the product's default windows and intervals, and the
//     per-organization limits set to what the scenarios need: scenario 1 creates LOAD_N
//     credentials in one organization, all at once (a burst of LOAD_N), and scenario 2
//     registers one workspace;
//
// then `loadtest onboard`: scenario 1 (LOAD_N onboardings at once, default 1000, each
// wizard reading its credential's detail every 3 s while a window is open) and scenario 2
// (POST /creds at each of LOAD_CREDS_CONNS connection counts, then GET credential at
// LOAD_CONNS, LOAD_DURATION each; defaults 1,16,64, 64 and 60s; LOAD_CONNS alone sets
// both). LOAD_COUNT=0 leaves the proxy out (no storage counts, the handler's latency
// without the proxy's); LOAD_JSON=file also writes the figures as JSON; LOAD_PROFILE=file
// runs the handler with its profiling listener (AZCREDS_LOCAL_PPROF_ADDR on the port base
// +13) and records its CPU profile during one more /creds run at the highest count.
// The logs of the last run stay in .local/logs/load/.
func load(ctx context.Context, d *dev, args []string) error {
	n, concurrency := envOr("LOAD_N", "1000"), envOr("LOAD_CONCURRENCY", "16")
	conns, duration := envOr("LOAD_CONNS", "64"), envOr("LOAD_DURATION", "60s")
	credsConns := envOr("LOAD_CREDS_CONNS", envOr("LOAD_CONNS", "1,16,64"))
	propagation, err := time.ParseDuration(envOr("LOAD_PROPAGATION", "1s"))
	if err != nil {
		return fmt.Errorf("LOAD_PROPAGATION: %w", err)
	}
	profile := os.Getenv("LOAD_PROFILE")
	if profile != "" {
		if profile, err = filepath.Abs(profile); err != nil {
			return err
		}
	}
	count := envOr("LOAD_COUNT", "1") != "0"
	base, err := portBase("AZCREDS_LOAD_PORT_BASE", stack.DefaultLoadPortBase)
	if err != nil {
		return err
	}
	ports := stack.PortsFrom(base)
	what := fmt.Sprintf("make load (AZCREDS_LOAD_PORT_BASE=%d)", base)
	var need []stack.NamedPort
	for _, p := range []int{ports.AzuriteBlob, ports.AzuriteQueue, ports.AzuriteTable, ports.ProxyBlob, ports.ProxyQueue,
		ports.ProxyTable, ports.StandIn, ports.StorageFront, ports.Handler} {
		need = append(need, stack.NamedPort{Name: what, Port: p})
	}
	if profile != "" {
		need = append(need, stack.NamedPort{Name: what + ", the handler's profiles", Port: ports.Profiles})
	}
	if err := stack.RequireFree(need...); err != nil {
		return err
	}
	if err := d.ensureKeys(); err != nil {
		return err
	}

	if err := os.MkdirAll(d.files.Local(), 0o755); err != nil {
		return err
	}
	data, err := os.MkdirTemp(d.files.Local(), "load-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return err
	}
	d.cleanups = append(d.cleanups, func() { os.RemoveAll(data) })
	logs := filepath.Join(d.files.LogDir(), "load")
	if err := os.RemoveAll(logs); err != nil {
		return err
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(data, "bin")
	for _, b := range []stack.Binary{stack.HandlerBinary, stack.StandInBinary, stack.FaultProxyBinary, stack.LoadTestBinary} {
		start := time.Now()
		say("go build %s", b.Package)
		if err := stack.Build(ctx, d.launcher, d.root(), os.Getenv("GOFLAGS"), bin, b); err != nil {
			return err
		}
		say("go build %s: %s", b.Package, time.Since(start).Round(time.Second))
	}

	az := stack.NewAzurite(d.files, ports, filepath.Join(data, "azurite"), filepath.Join(logs, "azurite.log"))
	say("starting Azurite on https://127.0.0.1:%d-%d (log: %s)", az.Blob, az.Table, d.rel(az.Log))
	if err := az.Start(ctx, d.launcher); err != nil {
		return err
	}
	storage := az.Endpoints()
	var countArgs []string
	if count {
		fp := stack.NewFaultProxy(d.files, ports, filepath.Join(bin, stack.FaultProxyBinary.Name), az.Endpoints(), filepath.Join(logs, "faultproxy.log"))
		say("starting the counting storage proxy on %s (blob), %s (queue), %s (table)", stack.Addr(fp.Blob), stack.Addr(fp.Queue), stack.Addr(fp.Table))
		if _, err := fp.Start(ctx, d.launcher); err != nil {
			return err
		}
		storage = fp.Endpoints()
		countArgs = []string{"-storage-stats", fp.StatsURL()}
	}
	si := stack.NewStandIn(d.files, ports, filepath.Join(bin, stack.StandInBinary.Name), storage.Blob, filepath.Join(logs, "localazure.log"))
	si.Propagation = propagation
	say("starting the Entra/Graph stand-in on %s (role propagation %s)", si.URL(), propagation)
	if _, err := si.Start(ctx, d.launcher); err != nil {
		return err
	}

	// The handler's own storage (tables, queues) goes through the counting proxy.
	handlerURL := "http://" + stack.Addr(ports.Handler)
	settings := []string{config.KeyMaxCredentials + "=" + n, config.KeyMaxWorkspaces + "=1", config.KeyCreateRate + "=" + n + "/1m"}
	say("limits: %s credentials, 1 workspace, create rate %s/1m (burst %s)", n, n, n)
	var profileArgs []string
	if profile != "" {
		settings = append(settings, config.KeyLocalPprofAddr+"="+stack.Addr(ports.Profiles))
		profileArgs = []string{"-profile-url", "http://" + stack.Addr(ports.Profiles) + "/debug/pprof/profile", "-profile-out", profile}
		say("the handler serves its profiles on %s; the CPU profile of the profiled /creds run goes to %s", stack.Addr(ports.Profiles), d.rel(profile))
	}
	h, err := d.launcher.Start(stack.Command{Name: "bin/handler serve", Path: filepath.Join(bin, stack.HandlerBinary.Name),
		Args: []string{"serve", "-settings", filepath.Join(data, "none.json")}, Env: d.handlerEnv(ports, storage, settings...),
		Dir: d.root(), Log: filepath.Join(logs, "handler.log")})
	if err != nil {
		return err
	}
	say("starting bin/handler serve on %s (log: %s)", handlerURL, d.rel(h.Log))
	if err := stack.HandlerReady(ctx, h, handlerURL); err != nil {
		return err
	}
	// The figures read /proc/<pid> of the handler itself.
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", h.Pid())); strings.TrimSpace(string(comm)) != stack.HandlerBinary.Name {
		return fmt.Errorf("process %d is not the handler", h.Pid())
	}
	tok, err := d.mintToken(stack.LoadOrg, "local-user", 12*time.Hour)
	if err != nil {
		return err
	}

	say("load average before the run: %s on %d cores", loadAverage(), runtime.NumCPU())
	say("loadtest onboard -n %s -c %s; then /creds at %s connections and GET credential at %s, %s each", n, concurrency, credsConns, conns, duration)
	ltArgs := append([]string{"onboard", "-api", handlerURL, "-org", stack.LoadOrg, "-control", si.ControlURL(),
		"-cacert", d.files.CertFile(), "-tenant", stack.CustomerTenant1, "-subscription", stack.CustomerSubscriptionID,
		"-resource-group", stack.CustomerResourceGroup, "-account", stack.CustomerAccount1Name,
		"-n", n, "-c", concurrency, "-pid", strconv.Itoa(h.Pid())}, countArgs...)
	ltArgs = append(ltArgs, "-steady-c", conns, "-creds-c", credsConns, "-steady-d", duration)
	ltArgs = append(ltArgs, profileArgs...)
	lt := stack.Command{Name: "loadtest", Path: filepath.Join(bin, stack.LoadTestBinary.Name), Args: ltArgs,
		Env: []string{"AZCREDS_LOADTEST_TOKEN=" + tok}, Dir: d.root()}
	if out := os.Getenv("LOAD_JSON"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		lt.Args = append(lt.Args, "-json")
		lt.Stdout = f
	}
	p, err := d.launcher.Start(lt)
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	err = p.Wait()
	say("load average after the run: %s", loadAverage())
	if err != nil {
		return fmt.Errorf("loadtest failed (%s)%s", stack.ExitError(err), h.LogTail(40))
	}
	say("load run passed")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
