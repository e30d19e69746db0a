package kubectllock

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"k8s.io/utils/clock"
)

// runApp runs the plugin with args and stdin, and returns the exit code and both
// outputs.
func runApp(ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	a := &App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Clock: clock.RealClock{}}
	code = a.Run(ctx, args)
	return code, out.String(), errOut.String()
}

// TestCommandLineErrors: wrong command lines fail before any API call, with exit
// code 2 and a message that names the flag. The kubeconfig does not exist, so a
// command line that wrongly passed validation would fail differently.
func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"acquire", "--user", "alice"}, "--repo is required"},
		{[]string{"acquire", "--repo", "acme/infra"}, "--user is required"},
		{[]string{"acquire", "--repo", "infra", "--user", "alice"}, `invalid --repo: repository "infra" must be "owner/repo"`},
		{[]string{"acquire", "--repo", "acme//infra", "--user", "alice"}, `invalid --repo: repository "acme//infra" has an empty segment`},
		{[]string{"acquire", "--repo", "acme/infra", "--path", "../x", "--user", "alice"}, `invalid --path: path "../x" must not leave the repository`},
		{[]string{"acquire", "--repo", "acme/infra", "--path", "/etc", "--user", "alice"}, `invalid --path: path "/etc" must be relative`},
		{[]string{"acquire", "--repo", "acme/infra", "--workspace", "a/b", "--user", "alice"}, `invalid --workspace: workspace "a/b" must not contain '/'`},
		{[]string{"acquire", "--repo", "acme/infra", "--workspace", "", "--user", "alice"}, "invalid --workspace: workspace must not be empty"},
		{[]string{"acquire", "--repo", "acme/infra", "--project", "a/b", "--user", "alice"}, `invalid --project: project name "a/b" must not contain '/'`},
		{[]string{"acquire", "--repo", "acme/infra", "--pull", "-3", "--user", "alice"}, "invalid --pull -3"},
		{[]string{"acquire", "--repo", "acme/infra", "--pull", "x", "--user", "alice"}, `invalid value "x" for flag -pull`},
		{[]string{"acquire", "--repo", "acme/infra", "--user", "alice", "--priority", "urgent"}, `invalid --priority "urgent": want Low, Normal, High or Critical`},
		{[]string{"acquire", "--repo", "acme/infra", "--user", "alice", "--queue-timeout", "soon"}, `invalid value "soon" for flag -queue-timeout: want a duration`},
		{[]string{"acquire", "--repo", "acme/infra", "--user", "alice", "--queue-timeout", "-1s"}, "invalid --queue-timeout -1s: it must not be negative"},
		{[]string{"acquire", "--repo", "acme/infra", "--user", "alice", "--ttl", "0s"}, "invalid --ttl 0s: it must be positive"},
		{[]string{"acquire", "--repo", "acme/infra", "--user", "alice", "extra"}, `acquire takes only flags, got ["extra"]`},
		{[]string{"acquire", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"release"}, "give the LockRequest name, or the key"},
		{[]string{"release", "--repo", "acme/infra"}, "--pull or --user is required"},
		{[]string{"release", "name", "--repo", "acme/infra"}, "give a LockRequest name or --repo, not both"},
		{[]string{"release", "a", "b"}, `release takes one LockRequest name, got ["a" "b"]`},
		{[]string{"force-unlock"}, "force-unlock takes one lock key or ProjectLock name, got 0 arguments"},
		{[]string{"force-unlock", "a", "b", "--yes"}, "got 2 arguments"},
		{[]string{"list", "x"}, `list takes no arguments, got ["x"]`},
		{[]string{"list", "-o", "json"}, `invalid --output "json"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append(slices.Clone(tc.args), "--kubeconfig", "/nonexistent/kubeconfig")
			code, _, stderr := runApp(context.Background(), "", args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runApp(context.Background(), "", "--help")
	if code != ExitOK {
		t.Errorf("--help: exit %d", code)
	}
	for _, cmd := range []string{"list", "acquire", "release", "force-unlock"} {
		if !strings.Contains(stdout, "kubectl lock "+cmd) {
			t.Errorf("--help does not show %s:\n%s", cmd, stdout)
		}
	}
	code, _, stderr := runApp(context.Background(), "", "acquire", "--help")
	if code != ExitOK || !strings.Contains(stderr, "-queue-timeout") || !strings.Contains(stderr, "Ctrl-C withdraws") {
		t.Errorf("acquire --help: exit %d\n%s", code, stderr)
	}
	if code, _, _ := runApp(context.Background(), ""); code != ExitUsage {
		t.Errorf("no arguments: exit %d, want %d", code, ExitUsage)
	}
}

func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   bool
	}{
		{"y\n", true},
		{"yes\n", true},
		{"  YES \n", true},
		{"Y", true}, // no newline before EOF
		{"n\n", false},
		{"no\n", false},
		{"\n", false},
		{"", false}, // EOF: no answer declines
		{"yess\n", false},
		{"sure\n", false},
	} {
		var out bytes.Buffer
		got, err := confirm(strings.NewReader(tc.answer), &out, "Really?")
		if err != nil {
			t.Fatalf("confirm(%q): %v", tc.answer, err)
		}
		if got != tc.want {
			t.Errorf("confirm(%q) = %v, want %v", tc.answer, got, tc.want)
		}
		if out.String() != "Really? [y/N]: \n" {
			t.Errorf("prompt %q, want the question, [y/N] and, since the answer came from no terminal, a newline", out.String())
		}
	}
}
