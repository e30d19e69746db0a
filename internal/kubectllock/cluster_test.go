package kubectllock

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/testenv"
)

// run runs the plugin against the test cluster in namespace ns and fails the test
// unless it exits with wantCode.
func run(ctx context.Context, t *testing.T, ns, stdin string, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	args = append(args, "--kubeconfig", kubeconfig, "-n", ns)
	code, stdout, stderr := runApp(ctx, stdin, args...)
	if code != wantCode {
		t.Fatalf("kubectl lock %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
	}
	return stdout, stderr
}

func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s does not contain %q:\n%s", what, want, text)
		}
	}
}

// TestLockLifecycle: acquire, a second acquire that waits and shows its position,
// list, release (the waiter gets the lock), force-unlock declined and confirmed,
// force-unlock by ProjectLock name with --yes, and release of a revoked request.
func TestLockLifecycle(t *testing.T) {
	ctx := deadline(t)
	ns := newNamespace(t)
	key := lockkey.New("acme/infra", "modules/vpc", "default", "")
	vpc := []string{"--repo", "acme/infra", "--path", "modules/vpc"}

	out, _ := run(ctx, t, ns, "", ExitOK, append([]string{"acquire", "--pull", "42", "--user", "alice"}, vpc...)...)
	mustContain(t, "acquire", out, "requesting acme/infra/modules/vpc/default/ for acme/infra#42",
		"acquired acme/infra/modules/vpc/default/, fencing token ", "kubectl lock release -n "+ns+" pr42-")

	bob := runBackground(ctx, append([]string{"acquire", "--pull", "57", "--user", "bob", "--kubeconfig", kubeconfig, "-n", ns}, vpc...)...)
	bob.out.waitFor(ctx, t, "queued at position 1 behind acme/infra#42\n")

	out, _ = run(ctx, t, ns, "", ExitOK, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("list: want a header, the holder and one waiter:\n%s", out)
	}
	mustContain(t, "list header", lines[0], "KEY", "HOLDER", "PULL", "TOKEN", "AGE", "QUEUE")
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != key.String() || f[1] != "acme/infra#42" || f[2] != "42" || f[5] != "1" {
		t.Errorf("list holder line %q, want %s held by acme/infra#42, pull 42, queue 1", lines[1], key)
	}
	if f := strings.Fields(lines[2]); len(f) < 5 || f[0] != "1." || f[3] != "acme/infra#57" || f[4] != "57" {
		t.Errorf("list waiter line %q, want position 1: acme/infra#57, pull 57", lines[2])
	}

	out, _ = run(ctx, t, ns, "", ExitOK, append([]string{"release", "--pull", "42"}, vpc...)...)
	mustContain(t, "release", out, "released acme/infra/modules/vpc/default/ (LockRequest pr42-",
		"acme/infra/modules/vpc/default/ is now held by acme/infra#57 (fencing token ")
	if code := bob.wait(ctx, t); code != ExitOK {
		t.Fatalf("the waiting acquire exited %d:\n%s%s", code, bob.out, bob.errOut)
	}
	mustContain(t, "the waiting acquire", bob.out.String(), "acquired acme/infra/modules/vpc/default/, fencing token ")

	// carol waits behind bob; a declined force-unlock changes nothing.
	carol := runBackground(ctx, append([]string{"acquire", "--user", "carol", "--kubeconfig", kubeconfig, "-n", ns}, vpc...)...)
	carol.out.waitFor(ctx, t, "queued at position 1 behind acme/infra#57\n")
	out, stderr := run(ctx, t, ns, "n\n", ExitError, "force-unlock", key.String())
	mustContain(t, "declined force-unlock prompt", out, "Force-unlock acme/infra/modules/vpc/default/ in namespace "+ns+"?",
		"holder: acme/infra#57 (user bob)", "1 waiting; next: carol", "[y/N]: ")
	mustContain(t, "declined force-unlock", stderr, "aborted: nothing was changed")
	out, _ = run(ctx, t, ns, "", ExitOK, "list")
	if f := strings.Fields(out); !strings.Contains(out, "acme/infra#57") || len(f) < 16 || f[12] != "1." || f[15] != "carol" {
		t.Errorf("list after declining: want acme/infra#57 holding and carol waiting at 1:\n%s", out)
	}

	out, _ = run(ctx, t, ns, "y\n", ExitOK, "force-unlock", key.String())
	mustContain(t, "force-unlock", out, "force-unlocked acme/infra/modules/vpc/default/: LockRequest pr57-",
		"is now held by carol (fencing token ")
	if code := carol.wait(ctx, t); code != ExitOK {
		t.Fatalf("carol's acquire exited %d:\n%s%s", code, carol.out, carol.errOut)
	}

	// By the ProjectLock's name, without a prompt.
	out, _ = run(ctx, t, ns, "", ExitOK, "force-unlock", key.ObjectName(), "--yes")
	mustContain(t, "force-unlock --yes", out, "LockRequest u-carol-", "acme/infra/modules/vpc/default/ is free")
	if strings.Contains(out, "[y/N]") {
		t.Errorf("force-unlock --yes asked:\n%s", out)
	}

	// The revoked requests stay until released by name.
	out, _ = run(ctx, t, ns, "", ExitOK, append([]string{"release", "--user", "carol"}, vpc...)...)
	mustContain(t, "release of a revoked request", out, "which had ended (Revoked)", "is free")
	var list lockingv1alpha1.LockRequestList
	if err := env.Client.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	for _, lr := range list.Items {
		if lr.Namespace == ns && strings.HasPrefix(lr.Name, "pr57-") {
			run(ctx, t, ns, "", ExitOK, "release", lr.Name)
		}
	}
	out, _ = run(ctx, t, ns, "", ExitOK, "list")
	if out != "No locks in namespace "+ns+".\n" {
		t.Errorf("list at the end: %q, want no locks", out)
	}
}

func TestInterruptedAcquireWithdraws(t *testing.T) {
	ctx := deadline(t)
	ns := newNamespace(t)
	key := []string{"--repo", "acme/infra"}
	run(ctx, t, ns, "", ExitOK, append([]string{"acquire", "--user", "alice"}, key...)...)

	acquireCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	bob := runBackground(acquireCtx, append([]string{"acquire", "--user", "bob", "--kubeconfig", kubeconfig, "-n", ns}, key...)...)
	bob.out.waitFor(ctx, t, "queued at position 1 behind alice")
	interrupt() // what Ctrl-C does in main
	if code := bob.wait(ctx, t); code != ExitInterrupted {
		t.Fatalf("interrupted acquire exited %d, want %d:\n%s%s", code, ExitInterrupted, bob.out, bob.errOut)
	}
	mustContain(t, "interrupted acquire", bob.errOut.String(), "interrupted: withdrew LockRequest "+ns+"/u-bob-")

	out, _ := run(ctx, t, ns, "", ExitOK, "list")
	if strings.Contains(out, "bob") || !strings.Contains(out, "alice") {
		t.Errorf("after the interrupt, list shows:\n%s\nwant alice holding and bob gone", out)
	}
}

func TestEndedAcquire(t *testing.T) {
	ctx := deadline(t)
	ns := newNamespace(t)
	run(ctx, t, ns, "", ExitOK, "acquire", "--repo", "acme/infra", "--user", "alice")
	_, stderr := run(ctx, t, ns, "", ExitError, "acquire", "--repo", "acme/infra", "--user", "bob", "--queue-timeout", "0s")
	mustContain(t, "fail-fast acquire", stderr, "error: acme/infra/./default/ was not acquired: Conflict: held by alice and queueTimeout is 0s")
}

func TestNothingToDo(t *testing.T) {
	ctx := deadline(t)
	ns := newNamespace(t)
	_, stderr := run(ctx, t, ns, "", ExitError, "release", "pr1-nothing")
	mustContain(t, "release of a missing request", stderr, "nothing to release: no LockRequest pr1-nothing in namespace "+ns)
	_, stderr = run(ctx, t, ns, "", ExitError, "force-unlock", "acme/infra/./default/", "--yes")
	mustContain(t, "force-unlock of a free key", stderr, "nobody holds or waits for acme/infra/./default/ in namespace "+ns)
	_, stderr = run(ctx, t, ns, "", ExitUsage, "force-unlock", "acme/infra/../default/", "--yes")
	mustContain(t, "force-unlock of a bad key", stderr, `invalid lock key "acme/infra/../default/": lock key "acme/infra/../default/": path ".." must not leave the repository`)
	_, stderr = run(ctx, t, ns, "", ExitError, "force-unlock", "no-such-lock", "--yes")
	mustContain(t, "force-unlock of an unknown name", stderr, `no lock named "no-such-lock" in namespace `+ns)
	// A nested repository's key is valid even if nobody holds it.
	_, stderr = run(ctx, t, ns, "", ExitError, "force-unlock", "group/sub/infra/envs/prod/default/", "--yes")
	mustContain(t, "force-unlock of a free nested key", stderr, "nobody holds or waits for group/sub/infra/envs/prod/default/")
}

// TestKubeconfigFromEnvironment: without flags, $KUBECONFIG and its context's
// namespace apply, as for kubectl.
func TestKubeconfigFromEnvironment(t *testing.T) {
	ctx := deadline(t)
	ns := newNamespace(t)
	path := t.TempDir() + "/config"
	if err := env.WriteKubeconfig(path, ns); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path)
	code, out, stderr := runApp(ctx, "", "acquire", "--repo", "acme/env", "--user", "alice")
	if code != ExitOK {
		t.Fatalf("acquire with $KUBECONFIG: exit %d\n%s%s", code, out, stderr)
	}
	mustContain(t, "acquire with $KUBECONFIG", out, "(LockRequest "+ns+"/u-alice-")
	code, out, _ = runApp(ctx, "", "list")
	if code != ExitOK || !strings.Contains(out, "acme/env/./default/") {
		t.Errorf("list with $KUBECONFIG: exit %d\n%s", code, out)
	}
	// --context names a context that is not in the file.
	code, _, stderr = runApp(ctx, "", "list", "--context", "elsewhere")
	if code != ExitError || !strings.Contains(stderr, `context "elsewhere" does not exist`) {
		t.Errorf("list --context elsewhere: exit %d\n%s", code, stderr)
	}
}

// TestForbidden: a user without RBAC permissions is told which verb on which
// resource is missing.
func TestForbidden(t *testing.T) {
	ctx := deadline(t)
	ns := newNamespace(t)
	path := t.TempDir() + "/config"
	if err := env.WriteKubeconfig(path, ns); err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range kc.AuthInfos {
		user.Impersonate = "nobody" // the admin may impersonate; nobody has no roles
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	// --as does the same from the command line.
	code, _, stderr := runApp(ctx, "", "list", "--kubeconfig", kubeconfig, "-n", ns, "--as", "nobody")
	if code != ExitError {
		t.Fatalf("list --as nobody: exit %d\n%s", code, stderr)
	}
	mustContain(t, "list --as nobody", stderr, `User "nobody" cannot list resource "projectlocks"`)

	code, _, stderr = runApp(ctx, "", "acquire", "--repo", "acme/infra", "--user", "nobody", "--kubeconfig", path)
	if code != ExitError {
		t.Fatalf("acquire without permissions: exit %d\n%s", code, stderr)
	}
	mustContain(t, "forbidden acquire", stderr,
		"permission denied: you may not create lockrequests.locking.runatlantis.io in namespace "+ns+".",
		"`kubectl lock acquire` needs create, get, watch and delete on lockrequests")
	code, _, stderr = runApp(ctx, "", "list", "--kubeconfig", path)
	if code != ExitError {
		t.Fatalf("list without permissions: exit %d\n%s", code, stderr)
	}
	mustContain(t, "forbidden list", stderr, "permission denied: you may not list projectlocks.locking.runatlantis.io in namespace "+ns+".")
}

func TestClusterWithoutTheCRDs(t *testing.T) {
	ctx := deadline(t)
	bare, err := testenv.StartWithoutCRDs()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bare.Stop(); err != nil {
			t.Errorf("stopping the API server without CRDs: %v", err)
		}
	})
	path := t.TempDir() + "/config"
	if err := bare.WriteKubeconfig(path, "default"); err != nil {
		t.Fatal(err)
	}
	const want = "error: the LockRequest CRD is not installed in this cluster: install the chart or `kubectl apply -f config/crd/bases`\n"
	for _, args := range [][]string{
		{"list"},
		{"acquire", "--repo", "acme/infra", "--user", "alice"},
		{"release", "some-request"},
		{"force-unlock", "acme/infra/./default/", "--yes"},
	} {
		code, _, stderr := runApp(ctx, "", append(args, "--kubeconfig", path)...)
		if code != ExitError || stderr != want {
			t.Errorf("%s without the CRDs: exit %d, stderr %q; want exit 1 and %q", args[0], code, stderr, want)
		}
	}
}
