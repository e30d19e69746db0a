// Command kubectl-lock is the kubectl plugin `kubectl lock`: list, acquire, release
// and force-unlock atlantis-lock-operator locks. Put it on PATH (`make build` writes
// bin/kubectl-lock) and run `kubectl lock --help`. See internal/kubectllock.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/utils/clock"

	"github.com/runatlantis/atlantis-lock-operator/internal/kubectllock"
)

func main() {
	// The first Ctrl-C cancels the context: acquire withdraws its request and exits.
	// After that, the default handling is back, so a second Ctrl-C kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	app := &kubectllock.App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Clock: clock.RealClock{}}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
