package kubectllock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

func runForceUnlock(ctx context.Context, a *App, args []string) error {
	var cf clusterFlags
	var yes bool
	fs := newFlagSet("force-unlock", "KEY | PROJECTLOCK [--yes]",
		"Take a lock away from its holder: delete the key's ProjectLock, as `kubectl delete projectlock`\n"+
			"does. The holder's LockRequest becomes Revoked and the next waiter gets the lock. KEY is the\n"+
			"Atlantis lock key as `kubectl lock list` shows it; PROJECTLOCK is the ProjectLock's name.",
		a.Stderr, &cf)
	fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	fs.BoolVar(&yes, "y", false, "shorthand for --yes")
	pos, err := parse(fs, args)
	switch {
	case err != nil:
		return err
	case len(pos) != 1:
		return usagef("force-unlock takes one lock key or ProjectLock name, got %d arguments", len(pos))
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	info, err := findLock(ctx, c, pos[0])
	if err != nil {
		return err
	}
	h := info.Holder
	if h == nil {
		return fmt.Errorf("%s is not held (%d waiting): nothing to force-unlock", info.Key, len(info.Queue))
	}
	if !yes {
		next := "nobody waits"
		if len(info.Queue) > 0 {
			next = fmt.Sprintf("%d waiting; next: %s", len(info.Queue), owner(&info.Queue[0]))
		}
		question := fmt.Sprintf("Force-unlock %s in namespace %s?\n"+
			"  holder: %s (user %s), LockRequest %s, fencing token %s\n"+
			"  queue:  %s\n"+
			"The holder's request becomes Revoked and the next waiter gets the lock.",
			info.Key, c.Namespace(), owner(h), h.Spec.User.Username, h.Name, dash(h.Status.FencingToken), next)
		ok, err := confirm(a.Stdin, a.Stdout, question)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("aborted: nothing was changed")
		}
	}
	if _, err := c.ForceUnlock(ctx, info.Key); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "force-unlocked %s: LockRequest %s (%s) is revoked; it stays, ended, until its owner releases it\n",
		info.Key, h.Name, owner(h))
	return printHolder(ctx, a, c, info.Key)
}

// findLock finds the lock a person named: an Atlantis lock key or a ProjectLock name.
// Keys are compared with what the API holds, so repositories of any depth work.
func findLock(ctx context.Context, c *lockclient.Client, arg string) (*lockclient.LockInfo, error) {
	infos, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	isKey := strings.Contains(arg, "/")
	for i := range infos {
		info := &infos[i]
		if (isKey && info.Key.String() == arg) || (!isKey && info.Key.ObjectName() == arg) {
			return info, nil
		}
	}
	if !isKey {
		return nil, fmt.Errorf("no lock named %q in namespace %s: give a ProjectLock name or a lock key as `kubectl lock list` shows them", arg, c.Namespace())
	}
	if err := validKey(arg); err != nil {
		return nil, usagef("invalid lock key %q: %v", arg, err)
	}
	return nil, fmt.Errorf("nobody holds or waits for %s in namespace %s", arg, c.Namespace())
}

// maxRepositoryDepth bounds the repository depths tried when checking a key: GitLab
// allows 20 levels of subgroups.
const maxRepositoryDepth = 21

// validKey reports why arg is no Atlantis lock key at any repository depth.
func validKey(arg string) error {
	var first error
	for depth := 2; depth <= maxRepositoryDepth; depth++ {
		_, err := lockkey.ParseWithRepositoryDepth(arg, depth)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// confirm asks question on out and reads the answer from in: only "y" or "yes"
// (any case) agrees; anything else, or no answer, declines.
func confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprintf(out, "%s [y/N]: ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	if !isTerminal(in) {
		// A terminal echoes the answer and its newline; a pipe does not, and what
		// follows would continue the prompt's line.
		fmt.Fprintln(out)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// isTerminal reports whether r is a terminal (a character device).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
