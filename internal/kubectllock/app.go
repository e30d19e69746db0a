// Package kubectllock is the kubectl plugin `kubectl lock`: list, acquire, release and
// force-unlock atlantis-lock-operator locks from a terminal, through pkg/lockclient.
// cmd/kubectl-lock is its main; everything is here so that tests can run it with
// their own arguments, streams and clock.
package kubectllock

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"k8s.io/utils/clock"
)

// Exit codes of Run.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: the command failed (the API refused, the lock ended, nothing to do).
	ExitError = 1
	// ExitUsage: the command line was wrong.
	ExitUsage = 2
	// ExitInterrupted: Ctrl-C (the context ended) stopped the command; like a shell,
	// 128 + SIGINT.
	ExitInterrupted = 130
)

// App runs the plugin with the given streams. The zero value is not usable: set the
// streams (os.Stdin, os.Stdout, os.Stderr in main) and the clock.
type App struct {
	// Stdin answers the force-unlock confirmation.
	Stdin io.Reader
	// Stdout gets results: tables, progress, what was done.
	Stdout io.Writer
	// Stderr gets errors and usage.
	Stderr io.Writer
	// Clock tells ages in the list table (clock.RealClock{} in main).
	Clock clock.PassiveClock
}

// command is one subcommand.
type command struct {
	name  string
	args  string // the positional arguments, for usage
	short string
	run   func(ctx context.Context, a *App, args []string) error
}

func commands() []command {
	return []command{
		{"list", "", "show every lock of the namespace: its holder and its queue", runList},
		{"acquire", "--repo R --user U [--path P] [--workspace W] [--pull N] ...", "take a lock, waiting in the queue; it stays held until released", runAcquire},
		{"release", "NAME | --repo R (--pull N | --user U) [--path P] ...", "release a lock (or leave its queue) by deleting its LockRequest", runRelease},
		{"force-unlock", "KEY | PROJECTLOCK [--yes]", "take a lock away from its holder (asks for confirmation)", runForceUnlock},
	}
}

// Run runs the plugin with args (without the program name) and returns the exit
// code. Cancelling ctx (Ctrl-C in main) withdraws a request that acquire is waiting
// with.
func (a *App) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		a.usage(a.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, cmd := range commands() {
		if cmd.name != args[0] {
			continue
		}
		err := cmd.run(ctx, a, args[1:])
		switch {
		case err == nil:
			return ExitOK
		case errors.Is(err, flag.ErrHelp):
			return ExitOK
		case errors.As(err, new(*usageError)):
			fmt.Fprintf(a.Stderr, "error: %v\nSee 'kubectl lock %s --help'.\n", err, cmd.name)
			return ExitUsage
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			fmt.Fprintf(a.Stderr, "interrupted: %s\n", explain(err, cmd.name))
			return ExitInterrupted
		}
		fmt.Fprintf(a.Stderr, "error: %s\n", explain(err, cmd.name))
		return ExitError
	}
	fmt.Fprintf(a.Stderr, "error: unknown command %q\n", args[0])
	a.usage(a.Stderr)
	return ExitUsage
}

func (a *App) usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("kubectl lock: Atlantis project locks of atlantis-lock-operator.\n\nUsage:\n")
	for _, cmd := range commands() {
		fmt.Fprintf(&b, "%s\n      %s\n", strings.TrimRight(fmt.Sprintf("  kubectl lock %-13s %s", cmd.name, cmd.args), " "), cmd.short)
	}
	b.WriteString("\nEvery command takes --kubeconfig, --context, -n/--namespace and --as, as kubectl does;\n" +
		"'kubectl lock COMMAND --help' lists its flags.\n")
	fmt.Fprint(w, b.String())
}

// usageError is a wrong command line: Run prints it with a pointer to --help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
