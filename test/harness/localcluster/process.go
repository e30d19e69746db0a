package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// Process is a child process that runs in its own process group, so that a Ctrl-C in
// the terminal reaches only its parent, which then stops children in the right order.
// On Linux it is also killed when its parent dies without stopping it.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the result of Wait; read only after done is closed
}

// StartProcess starts cmd as a Process. cmd.SysProcAttr must be nil; it is set here.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr != nil {
		return nil, errors.New("localcluster: StartProcess sets SysProcAttr itself")
	}
	cmd.SysProcAttr = childSysProcAttr()
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go p.run(started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	return p, nil
}

// run starts the process and waits for it on one locked OS thread. The parent-death
// signal fires when the thread that forked the child exits, not the whole process;
// Go may retire an OS thread, so the thread is held for the child's lifetime.
func (p *Process) run(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := p.cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	p.err = p.cmd.Wait()
	close(p.done)
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int {
	return p.cmd.Process.Pid
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} {
	return p.done
}

// Err is what exec.Cmd.Wait returned (nil for exit status 0). Call it after Done.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// ExitCode is the exit status, or 128 plus the signal number when a signal ended the
// process, as shells report it. Call it after Done.
func (p *Process) ExitCode() int {
	<-p.done
	state := p.cmd.ProcessState
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// Signal sends sig to the process's whole group, so that helpers it started go too.
// Signalling a process that has exited is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s: %w", p.cmd.Path, err)
	}
	return nil
}

// Stop sends SIGTERM and waits for the process to exit; when ctx is done first it
// sends SIGKILL and waits again. Its exit status does not matter: it was asked to
// stop. Stop returns an error only when the process could not be signalled or
// needed SIGKILL.
func (p *Process) Stop(ctx context.Context) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return fmt.Errorf("%s did not exit after SIGTERM and was killed", p.cmd.Path)
}
