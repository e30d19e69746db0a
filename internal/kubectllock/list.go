package kubectllock

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
)

func runList(ctx context.Context, a *App, args []string) error {
	var cf clusterFlags
	var output string
	fs := newFlagSet("list", "[-o wide]", "Show every lock of the namespace: its holder, then one line per waiter in queue order.",
		a.Stderr, &cf)
	fs.StringVar(&output, "output", "", "output format: \"wide\" adds USER, EXPIRES and REQUEST")
	fs.StringVar(&output, "o", "", "shorthand for --output")
	pos, err := parse(fs, args)
	switch {
	case err != nil:
		return err
	case len(pos) > 0:
		return usagef("list takes no arguments, got %q", pos)
	case output != "" && output != "wide":
		return usagef("invalid --output %q: want \"wide\" or nothing", output)
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	infos, err := c.List(ctx)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		fmt.Fprintf(a.Stdout, "No locks in namespace %s.\n", c.Namespace())
		return nil
	}
	return renderLocks(a.Stdout, infos, a.Clock.Now(), output == "wide")
}

// renderLocks writes the locks as one table: a line per key with its holder, then an
// indented line per waiter, in queue order.
func renderLocks(w io.Writer, infos []lockclient.LockInfo, now time.Time, wide bool) error {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 8, 2, ' ', 0)
	row := func(cells ...string) {
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	header := []string{"KEY", "HOLDER", "PULL", "TOKEN", "AGE", "QUEUE"}
	if wide {
		header = append(header, "USER", "EXPIRES", "REQUEST")
	}
	row(header...)
	for _, info := range infos {
		cells := []string{info.Key.String(), "<none>", "-", "-", "-", strconv.Itoa(len(info.Queue))}
		extra := []string{"-", "-", "-"}
		if h := info.Holder; h != nil {
			cells[1], cells[2], cells[3] = owner(h), pull(h), dash(h.Status.FencingToken)
			if h.Status.AcquiredTime != nil {
				cells[4] = age(now, h.Status.AcquiredTime.Time)
			}
			extra[0], extra[2] = h.Spec.User.Username, h.Name
			if h.Status.ExpiresTime != nil {
				extra[1] = "in " + age(h.Status.ExpiresTime.Time, now)
			}
		}
		if wide {
			cells = append(cells, extra...)
		}
		row(cells...)
		for i := range info.Queue {
			lr := &info.Queue[i]
			place := "  pending"
			if lr.Status.Position > 0 {
				place = fmt.Sprintf("  %d. waiting", lr.Status.Position)
			}
			since := lr.CreationTimestamp.Time
			if lr.Status.EnqueuedTime != nil {
				since = lr.Status.EnqueuedTime.Time
			}
			cells := []string{fmt.Sprintf("%s (%s)", place, priority(lr)), owner(lr), pull(lr), "-", age(now, since), ""}
			if wide {
				cells = append(cells, lr.Spec.User.Username, "-", lr.Name)
			}
			row(cells...)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A waiter's empty QUEUE cell keeps the columns of all rows aligned, but leaves
	// blanks at the end of its line.
	lines := strings.Split(table.String(), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

func owner(lr *lockingv1alpha1.LockRequest) string {
	if lr.Status.Owner != "" {
		return lr.Status.Owner
	}
	return lr.Spec.Owner()
}

func pull(lr *lockingv1alpha1.LockRequest) string {
	if lr.Spec.Pull == nil {
		return "-"
	}
	return strconv.Itoa(int(lr.Spec.Pull.Number))
}

func priority(lr *lockingv1alpha1.LockRequest) string {
	if lr.Spec.Priority == "" {
		return string(lockingv1alpha1.PriorityNormal)
	}
	return string(lr.Spec.Priority)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is kubectl's short form of how long after since now is ("5m", "2d3h").
func age(now, since time.Time) string {
	return duration.HumanDuration(now.Sub(since))
}
