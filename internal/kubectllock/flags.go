package kubectllock

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lockingv1alpha1 "github.com/runatlantis/atlantis-lock-operator/api/v1alpha1"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockclient"
	"github.com/runatlantis/atlantis-lock-operator/pkg/lockkey"
)

// clusterFlags are kubectl's connection flags.
type clusterFlags struct {
	kubeconfig string
	context    string
	namespace  string
	as         string
}

func (f *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "the kubeconfig context to use")
	fs.StringVar(&f.namespace, "namespace", "", "the namespace of the locks (default: the context's namespace)")
	fs.StringVar(&f.namespace, "n", "", "shorthand for --namespace")
	fs.StringVar(&f.as, "as", "", "act as this user (impersonation), for example to check what a service account may do")
}

// connect loads the kubeconfig the way kubectl does (--kubeconfig, else $KUBECONFIG,
// else ~/.kube/config; --context; -n, else the context's namespace; --as) and
// returns a lock client for the namespace.
func (f *clusterFlags) connect() (*lockclient.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	overrides.AuthInfo.Impersonate = f.as
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	kc, err := client.NewWithWatch(cfg, client.Options{Scheme: lockclient.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return lockclient.New(kc, ns, lockclient.WithFieldManager("kubectl-lock")), nil
}

// newFlagSet returns a subcommand's flags, with the cluster flags, printing its
// usage to w.
func newFlagSet(name, args, about string, w io.Writer, cluster *clusterFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "%s\n\nUsage:\n  kubectl lock %s %s\n\nFlags:\n", about, name, args)
		fs.PrintDefaults()
	}
	cluster.register(fs)
	return fs
}

// parse parses flags and positional arguments in any order, as kubectl does
// ("force-unlock KEY --yes" and "force-unlock --yes KEY"), and returns the
// positional ones. Flag errors are usage errors.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// keyFlags say which lock, and for whom: the flags of acquire and release.
type keyFlags struct {
	repo, path, workspace, project string
	pull                           int
	user                           string
	priority                       string
	queueTimeout, ttl              optionalDuration
}

func (k *keyFlags) register(fs *flag.FlagSet, withPolicy bool) {
	fs.StringVar(&k.repo, "repo", "", "the repository, \"owner/repo\" (required)")
	fs.StringVar(&k.path, "path", ".", "the project directory in the repository")
	fs.StringVar(&k.workspace, "workspace", lockclient.DefaultWorkspace, "the Terraform workspace")
	fs.StringVar(&k.project, "project", "", "the Atlantis project name, if the project has one")
	fs.IntVar(&k.pull, "pull", 0, "the pull request number: the pull owns the lock (default: a manual lock, owned by --user)")
	fs.StringVar(&k.user, "user", "", "who takes the lock: the owner of a manual lock")
	if withPolicy {
		fs.StringVar(&k.priority, "priority", "", "Low, Normal, High or Critical: orders the queue (default Normal)")
		fs.Var(&k.queueTimeout, "queue-timeout", "longest wait in the queue, such as 10m; 0s fails at once when the key is held (default: the operator's)")
		fs.Var(&k.ttl, "ttl", "the hold expires after this long unless renewed, such as 24h (default: the operator's, normally none)")
	}
}

// request validates the flags, naming the wrong one, and returns the request.
// needUser is false for release, where a pull names the owner alone.
func (k *keyFlags) request(needUser bool) (lockclient.Request, error) {
	if k.repo == "" {
		return lockclient.Request{}, usagef("--repo is required")
	}
	// Each part is checked alone, with pkg/lockkey's rules, so that the error can
	// name its flag.
	for _, part := range []struct {
		flag string
		key  lockkey.Key
	}{
		{"--repo", lockkey.New(k.repo, ".", lockclient.DefaultWorkspace, "")},
		{"--path", lockkey.New("owner/repo", k.path, lockclient.DefaultWorkspace, "")},
		{"--workspace", lockkey.New("owner/repo", ".", k.workspace, "")},
		{"--project", lockkey.New("owner/repo", ".", lockclient.DefaultWorkspace, k.project)},
	} {
		if err := part.key.Validate(); err != nil {
			return lockclient.Request{}, usagef("invalid %s: %v", part.flag, err)
		}
	}
	switch {
	case k.pull < 0:
		return lockclient.Request{}, usagef("invalid --pull %d: a pull request number is at least 1", k.pull)
	case needUser && k.user == "":
		return lockclient.Request{}, usagef("--user is required: who takes the lock")
	case !needUser && k.user == "" && k.pull == 0:
		return lockclient.Request{}, usagef("--pull or --user is required: whose lock to release")
	}
	r := lockclient.Request{
		Project:   lockingv1alpha1.ProjectRef{Repository: k.repo, Path: k.path, Name: k.project},
		Workspace: k.workspace,
		User:      lockingv1alpha1.UserRef{Username: k.user},
	}
	if k.pull > 0 {
		r.Pull = &lockingv1alpha1.PullRequestRef{Number: int32(k.pull)}
	}
	if k.priority != "" {
		p, err := parsePriority(k.priority)
		if err != nil {
			return lockclient.Request{}, err
		}
		r.Priority = p
	}
	if k.queueTimeout.set {
		if k.queueTimeout.d < 0 {
			return lockclient.Request{}, usagef("invalid --queue-timeout %s: it must not be negative", k.queueTimeout.d)
		}
		r.QueueTimeout = &k.queueTimeout.d
	}
	if k.ttl.set {
		if k.ttl.d <= 0 {
			return lockclient.Request{}, usagef("invalid --ttl %s: it must be positive", k.ttl.d)
		}
		r.TTL = &k.ttl.d
	}
	return r, nil
}

func parsePriority(s string) (lockingv1alpha1.Priority, error) {
	for _, p := range []lockingv1alpha1.Priority{lockingv1alpha1.PriorityLow, lockingv1alpha1.PriorityNormal,
		lockingv1alpha1.PriorityHigh, lockingv1alpha1.PriorityCritical} {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	return "", usagef("invalid --priority %q: want Low, Normal, High or Critical", s)
}

// optionalDuration is a duration flag that knows whether it was given, so that
// "not given" (the operator's default) differs from "0s".
type optionalDuration struct {
	d   time.Duration
	set bool
}

func (o *optionalDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optionalDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s, 10m or 1h30m: %w", err)
	}
	o.d, o.set = d, true
	return nil
}
