package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DefaultGrace is how long Stop waits after its signal before it kills: the handler
// finishes its requests and jobs in flight within 20 s.
const DefaultGrace = 30 * time.Second

// Command is a child process of the stack.
type Command struct {
	Name string // for messages
	Path string
	Args []string
	Env  []string // added to this process's environment; later entries win
	Dir  string
	// Log, when set, receives stdout and stderr (appended). Otherwise Stdout and Stderr
	// do, and without those this process's own.
	Log            string
	Stdout, Stderr io.Writer
	// Grace is how long Stop waits before it kills (DefaultGrace when 0).
	Grace time.Duration
}

// Process is a started Command, the leader of a process group of its own: a signal to
// the process is a signal to the group, so that what it started stops with it.
type Process struct {
	Name  string
	Log   string // the file its output goes to, if any
	cmd   *exec.Cmd
	grace time.Duration
	done  chan struct{}
	err   error // Wait's result; read after done is closed
	dog   *Watchdog
}

// Launcher starts processes and stops them all, newest first. A Watchdog, when set, also
// stops them if this process dies without a chance to. The zero value starts processes
// without a watchdog.
type Launcher struct {
	Watchdog *Watchdog
	mu       sync.Mutex
	procs    []*Process
}

// Start starts c with stdin from /dev/null, in a process group of its own.
func (l *Launcher) Start(c Command) (*Process, error) {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.SysProcAttr = childAttr()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
	var logFile *os.File
	if c.Log != "" {
		if err := os.MkdirAll(filepath.Dir(c.Log), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		logFile = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	grace := c.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	p := &Process{Name: c.Name, Log: c.Log, cmd: cmd, grace: grace, done: make(chan struct{}), dog: l.Watchdog}
	if p.Name == "" {
		p.Name = filepath.Base(c.Path)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	pgid := cmd.Process.Pid
	p.dog.watch(pgid)
	go func() {
		p.err = cmd.Wait()
		// What the process left in its group goes with it; then the group id may be
		// reused by the system, so the watchdog must forget it.
		if groupAlive(pgid) {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			waitGroup(pgid, time.Now().Add(grace))
		}
		p.dog.forget(pgid)
		if logFile != nil {
			logFile.Close()
		}
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// StopAll stops every process started and still running, newest first.
func (l *Launcher) StopAll() {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

// Running are the processes started and not yet stopped or ended, oldest first.
func (l *Launcher) Running() []*Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Process
	for _, p := range l.procs {
		select {
		case <-p.done:
		default:
			out = append(out, p)
		}
	}
	return out
}

// Pid is the process id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to end and returns how it ended.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop ends the process group gracefully: SIGTERM, then SIGKILL after the grace.
func (p *Process) Stop() { p.StopWith(syscall.SIGTERM) }

// Kill ends the process group at once with SIGKILL: no clean-up at all.
func (p *Process) Kill() { p.StopWith(syscall.SIGKILL) }

// StopWith sends sig to the process group and waits until the whole group has ended,
// killing what is left after the grace.
func (p *Process) StopWith(sig syscall.Signal) {
	select {
	case <-p.done: // its group is gone, and the system may have given its id to another
		return
	default:
	}
	pgid := p.Pid()
	_ = syscall.Kill(-pgid, sig)
	deadline := time.Now().Add(p.grace)
	select {
	case <-p.done:
	case <-time.After(p.grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// The leader is gone; the rest of its group may not be yet.
	waitGroup(pgid, deadline)
}

// waitGroup waits until no process of the group pgid is left, and kills the group when
// some are still there at deadline.
func waitGroup(pgid int, deadline time.Time) {
	killed := false
	for groupAlive(pgid) {
		if !killed && time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			killed = true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ExitError describes how a process ended, for messages: "exit status 1", "signal: killed".
func ExitError(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// WaitAny waits until one of procs ends and returns it, or returns nil when ctx ends
// first.
func WaitAny(ctx context.Context, procs ...*Process) *Process {
	ended := make(chan *Process, len(procs))
	stop := make(chan struct{})
	defer close(stop)
	for _, p := range procs {
		go func() {
			select {
			case <-p.done:
				ended <- p
			case <-stop:
			}
		}()
	}
	select {
	case p := <-ended:
		return p
	case <-ctx.Done():
		return nil
	}
}
