//go:build unix && !linux

package stack

import "syscall"

// childAttr puts a child in a process group of its own. Only Linux can tie a child's
// life to its parent's; elsewhere the Watchdog alone does.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether any process of the group pgid is still there.
func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }
