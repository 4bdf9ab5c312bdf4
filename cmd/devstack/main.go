// Command devstack runs the local stack (package internal/dev/stack) for the Makefile:
//
//	devstack run [-stack-only]  `make run` / `make stack`: Azurite, the Entra/Graph stand-in
//	                            and the handler until Ctrl-C (AZCREDS_RUN_PORT_BASE moves them)
//	devstack walkthrough        `make walkthrough`: one whole onboarding against `make run`
//	devstack load               `make load`: the load figures on a fresh stack of its own
//	devstack compare            `make compare`: the same load against a git ref's build and
//	                            this tree's, each on fresh stacks, and the ratios
//	devstack test               `make test`: gofmt, go mod tidy, vet and go test against a
//	                            throw-away Azurite, then every fuzz target
//	devstack fuzz               `make fuzz`: every fuzz target for FUZZTIME
//	devstack deps               the TLS certificate, the token keys and the Go modules
//	devstack env                the handler's environment for `make run`'s stack, as exports
//	devstack token -org ORG     a local API token
//
// scripts/dev.sh installs Azurite's Node modules and builds this command before it runs.
// Everything devstack starts runs in a process group of its own and is stopped when
// devstack ends: on success, failure, Ctrl-C, TERM or HUP, and, through a watchdog
// process, when devstack itself is killed with SIGKILL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/dev/stack"
)

// watchdogArg is the hidden subcommand of the watchdog process.
const watchdogArg = "watchdog"

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == watchdogArg {
		signal.Ignore(syscall.SIGINT, syscall.SIGHUP)
		_ = stack.RunWatchdog(os.Stdin, 10*time.Second, os.Stderr)
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "devstack: unknown command %q\n%s", name, usage)
		os.Exit(2)
	}
	os.Exit(launch(cmd, args))
}

const usage = `usage: devstack run [-stack-only] | walkthrough [flags] | load | compare | test | fuzz | deps | env | token -org ORG
`

// commands are devstack's subcommands.
var commands = map[string]func(ctx context.Context, d *dev, args []string) error{
	"run":         runStack,
	"walkthrough": runWalkthrough,
	"load":        load,
	"compare":     compare,
	"test":        test,
	"fuzz":        fuzz,
	"deps":        deps,
	"env":         printEnv,
	"token":       token,
}

// dev is what every subcommand works with.
type dev struct {
	files    stack.Files
	launcher *stack.Launcher
	// cleanups run after everything started has stopped: removing data directories.
	cleanups []func()
}

// root is the module root, where the Makefile runs devstack.
func (d *dev) root() string { return d.files.Root }

// rel is path relative to the module root, for messages.
func (d *dev) rel(path string) string {
	if r, err := filepath.Rel(d.root(), path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// say prints a progress line to stderr.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}

// failure is an error that ends devstack with a status of its own (go test's, say).
type failure struct {
	status int
	msg    string
}

func (f *failure) Error() string { return f.msg }

// launch runs cmd until it returns or a signal arrives, then stops everything it started
// and returns the exit status: 128+signal after a signal.
func launch(cmd func(context.Context, *dev, []string) error, args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Value
	sigs := make(chan os.Signal, 4)
	// SIGPIPE too: `make test | head` must still stop what it started.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		s := <-sigs
		got.Store(s)
		cancel()
		for range sigs { // a second Ctrl-C must not cut the clean-up short
		}
	}()

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		return 1
	}
	root, err := stack.ModuleRoot(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		return 1
	}
	d := &dev{files: stack.Files{Root: root}, launcher: &stack.Launcher{}}
	if exe, err := os.Executable(); err == nil {
		if dog, err := stack.StartWatchdog(exe, watchdogArg); err == nil {
			d.launcher.Watchdog = dog
		} else {
			say("no watchdog (%v): a SIGKILL of devstack would leave its processes running", err)
		}
	}
	err = cmd(ctx, d, args)
	if running := d.launcher.Running(); len(running) > 0 {
		names := make([]string, len(running))
		for i, p := range running {
			names[len(running)-1-i] = p.Name
		}
		say("stopping %s", strings.Join(names, ", "))
	}
	d.launcher.StopAll()
	_ = d.launcher.Watchdog.Close()
	for _, c := range d.cleanups {
		c()
	}

	if s, ok := got.Load().(syscall.Signal); ok {
		return 128 + int(s)
	}
	var f *failure
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case errors.As(err, &f):
		if f.msg != "" {
			say("%s", f.msg)
		}
		return f.status
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
}

// ensureKeys makes the TLS certificate and the API token keys when they are missing or
// no longer usable.
func (d *dev) ensureKeys() error {
	f := d.files
	made, err := stack.EnsureCert(f.CertFile(), f.KeyFile(), time.Now())
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	if made {
		say("made the TLS certificate %s (127.0.0.1, localhost, *.blob/queue/table.localhost)", d.rel(f.CertFile()))
	}
	if made, err = stack.EnsureAuthKeys(f.AuthKeyFile(), f.AuthPublicKeyFile()); err != nil {
		return fmt.Errorf("API token keys: %w", err)
	}
	if made {
		say("made the API token keys %s and pub.pem", d.rel(f.AuthKeyFile()))
	}
	return nil
}

// ensureBrowser installs Debian's chromium for the browser tests when no Chromium is
// installed and this is root with apt-get. Otherwise it says why the browser tests will
// skip (or, under CI=true, fail); a failed install is said, not fatal.
func (d *dev) ensureBrowser(ctx context.Context) {
	if stack.FindBrowser() != "" {
		return
	}
	log := filepath.Join(d.files.LogDir(), "apt-chromium.log")
	start := time.Now()
	say("no Chromium for the browser tests: apt-get install -y chromium (about 25 s; log %s)", d.rel(log))
	if err := stack.InstallBrowser(ctx, d.launcher, log); err != nil {
		say("chromium not installed (%v): the browser tests will skip, or fail under CI=true", err)
		return
	}
	say("chromium installed in %s: %s", time.Since(start).Round(time.Second), stack.FindBrowser())
}

// mintToken is a local API token for org, signed with the stack's key.
func (d *dev) mintToken(org, subject string, ttl time.Duration) (string, error) {
	key, err := os.ReadFile(d.files.AuthKeyFile())
	if err != nil {
		return "", err
	}
	m, err := auth.NewMinter(key, stack.AuthIssuer, stack.AuthAudience, time.Now)
	if err != nil {
		return "", err
	}
	return m.Mint(subject, strings.Split(org, ","), ttl)
}

// portBase reads a port base setting from the environment.
func portBase(name string, def int) (int, error) {
	return stack.ParsePortBase(name, os.Getenv(name), def)
}

// runPorts are the ports of `make run`'s stack: the fixed ones, or laid out from
// AZCREDS_RUN_PORT_BASE.
func runPorts() (stack.Ports, int, error) {
	base, err := portBase("AZCREDS_RUN_PORT_BASE", 0)
	if err != nil || base == 0 {
		return stack.RunPorts(), 0, err
	}
	return stack.PortsFrom(base), base, nil
}

func deps(ctx context.Context, d *dev, args []string) error {
	if err := d.ensureKeys(); err != nil {
		return err
	}
	d.ensureBrowser(ctx)
	say("go mod download")
	return d.goRun(ctx, "go mod download", nil, "mod", "download")
}

// goRun runs the go command in the module root with the output on ours and waits for it.
func (d *dev) goRun(ctx context.Context, name string, env []string, args ...string) error {
	p, err := d.launcher.Start(stack.Command{Name: name, Path: "go", Args: args, Env: env, Dir: d.root()})
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.Stop()
		return ctx.Err()
	}
	if err := p.Wait(); err != nil {
		return &failure{status: exitStatus(err), msg: fmt.Sprintf("%s failed (%s)", name, stack.ExitError(err))}
	}
	return nil
}

// exitStatus is a process's exit status, 1 when it has none (killed by a signal).
func exitStatus(err error) int {
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	return 1
}

// printEnv prints the environment the handler of `make run`'s stack gets, as shell
// exports: `eval "$(bin/devstack env)"` then `bin/handler token --org ORG`.
func printEnv(ctx context.Context, d *dev, args []string) error {
	ports, _, err := runPorts()
	if err != nil {
		return err
	}
	for _, kv := range d.handlerEnv(ports, ports.AzuriteEndpoints()) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Printf("export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	return nil
}

// handlerEnv is the environment of the handler of a stack on ports whose own storage is
// reached at storage.
func (d *dev) handlerEnv(ports stack.Ports, storage stack.Endpoints, settings ...string) []string {
	f := d.files
	return stack.HandlerEnv(stack.HandlerConfig{
		Storage:          storage.ConnectionString(stack.PlatformAccount()),
		StandInURL:       "https://" + stack.Addr(ports.StandIn),
		StorageFrontAddr: stack.Addr(ports.StorageFront),
		Listen:           stack.Addr(ports.Handler),
		CertFile:         f.CertFile(),
		PublicKeyFile:    f.AuthPublicKeyFile(),
		SigningKeyFile:   f.AuthKeyFile(),
		Settings:         settings,
	})
}

func token(ctx context.Context, d *dev, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	org := fs.String("org", stack.DemoOrg, "organization the token is good for (several: comma-separated)")
	sub := fs.String("sub", "local-user", "subject of the token")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := d.ensureKeys(); err != nil {
		return err
	}
	tok, err := d.mintToken(*org, *sub, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
