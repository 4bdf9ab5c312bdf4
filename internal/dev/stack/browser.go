package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EnvBrowser names the Chromium executable for the browser tests, over the search of
// FindBrowser.
const EnvBrowser = "AZCREDS_BROWSER"

// browserNames are Chromium's executables as distributions install them; Debian's
// chromium package installs /usr/bin/chromium.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// FindBrowser returns the Chromium the browser tests drive ($AZCREDS_BROWSER, else the first
// of Chromium's usual executables on PATH), or "" when there is none.
func FindBrowser() string {
	if p := os.Getenv(EnvBrowser); p != "" {
		if abs, err := exec.LookPath(p); err == nil {
			return abs
		}
		return ""
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// ErrNoBrowserInstall says why InstallBrowser cannot install Chromium here.
var ErrNoBrowserInstall = errors.New("chromium (Debian's package) is installed with apt-get as root, and this is not root or has no apt-get")

// InstallBrowser installs Debian's chromium package (about 25 s) with its output in log,
// refreshing the package lists once if the first attempt fails. It needs root and apt-get
// (ErrNoBrowserInstall otherwise).
func InstallBrowser(ctx context.Context, l *Launcher, log string) error {
	apt, err := exec.LookPath("apt-get")
	if err != nil || os.Geteuid() != 0 {
		return ErrNoBrowserInstall
	}
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return err
	}
	run := func(args ...string) error {
		p, err := l.Start(Command{Name: "apt-get " + args[0], Path: apt, Args: args, Log: log,
			Env: []string{"DEBIAN_FRONTEND=noninteractive"}})
		if err != nil {
			return err
		}
		select {
		case <-p.Done():
		case <-ctx.Done():
			p.Stop()
			return ctx.Err()
		}
		return p.Wait()
	}
	install := []string{"install", "-y", "-q", "chromium"}
	if err := run(install...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := run("update", "-q"); err != nil {
			return fmt.Errorf("apt-get update: %s (log %s)", ExitError(err), log)
		}
		if err := run(install...); err != nil {
			return fmt.Errorf("apt-get install chromium: %s (log %s)", ExitError(err), log)
		}
	}
	if FindBrowser() == "" {
		return fmt.Errorf("apt-get installed chromium, but no Chromium executable is on PATH (log %s)", log)
	}
	return nil
}
