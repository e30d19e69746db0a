//go:build unix && !linux

package localcluster

import "syscall"

// childSysProcAttr puts a child into its own process group. Only Linux can also tie
// the child's life to its parent's; elsewhere a crashed parent leaves it running
// until the next Start in the same state directory.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
