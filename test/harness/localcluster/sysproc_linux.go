package localcluster

import "syscall"

// childSysProcAttr puts a child into its own process group and has the kernel kill it
// when its parent dies, so that a crashed or SIGKILLed parent leaves nothing behind.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
