package stack

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Watchdog is the safety net for the one way out a launcher cannot handle: being killed
// with SIGKILL. It is a small process of its own (the launcher's own binary, run in its
// watchdog mode: RunWatchdog) in a process group of its own, reading the process groups
// the launcher starts from a pipe. When the launcher ends, however it ends, the kernel
// closes the pipe, and the watchdog stops every group still listed: SIGTERM, then
// SIGKILL after the grace. Pdeathsig reaches only a launcher's direct children; the
// watchdog reaches what they started too (go test's test binaries, for one).
type Watchdog struct {
	mu  sync.Mutex
	w   *os.File
	cmd *exec.Cmd
}

// StartWatchdog starts exe with args, which must call RunWatchdog with its stdin.
func StartWatchdog(exe string, args ...string) (*Watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // out of reach of the terminal's Ctrl-C
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start the watchdog: %w", err)
	}
	return &Watchdog{w: w, cmd: cmd}, nil
}

func (d *Watchdog) send(line string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		_, _ = io.WriteString(d.w, line+"\n")
	}
}

func (d *Watchdog) watch(pgid int)  { d.send("+" + strconv.Itoa(pgid)) }
func (d *Watchdog) forget(pgid int) { d.send("-" + strconv.Itoa(pgid)) }

// Close tells the watchdog that the launcher stopped its groups itself, and waits for it.
func (d *Watchdog) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	w := d.w
	d.w = nil
	d.mu.Unlock()
	if w == nil {
		return nil
	}
	w.Close()
	return d.cmd.Wait()
}

// RunWatchdog is the watchdog's side: it reads "+PGID" and "-PGID" lines from r until r
// ends, then stops every group still listed, and returns once they are all gone.
func RunWatchdog(r io.Reader, grace time.Duration, log io.Writer) error {
	signal := func(groups map[int]bool, sig syscall.Signal) {
		for pgid := range groups {
			_ = syscall.Kill(-pgid, sig)
		}
	}
	groups := map[int]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(line) < 2 {
			continue
		}
		pgid, err := strconv.Atoi(line[1:])
		if err != nil || pgid <= 1 {
			continue
		}
		switch line[0] {
		case '+':
			groups[pgid] = true
		case '-':
			delete(groups, pgid)
		}
	}
	for pgid := range groups {
		if !groupAlive(pgid) {
			delete(groups, pgid)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	fmt.Fprintf(log, "==> the launcher is gone: stopping the %d process group(s) it left\n", len(groups))
	signal(groups, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for len(groups) > 0 {
		for pgid := range groups {
			if !groupAlive(pgid) {
				delete(groups, pgid)
			}
		}
		if time.Now().After(deadline) {
			signal(groups, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
