//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runatlantis/atlantis-lock-operator/internal/operator"
	"github.com/runatlantis/atlantis-lock-operator/internal/orchestrator"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/localcluster"
	"github.com/runatlantis/atlantis-lock-operator/test/harness/managerproc"
)

// managerStopTimeout is how long a manager may take to stop after SIGTERM: more than
// controller-runtime's graceful shutdown of 30 s, so that only a hung manager is killed.
const managerStopTimeout = 40 * time.Second

// managerRun is how the chart's Deployment runs the manager, turned into what runs it
// here as an OS process: the same arguments (the configuration file, metrics and
// health addresses replaced by local ones), the same environment and the
// ServiceAccount's identity.
type managerRun struct {
	// serviceAccount is the pods' ServiceAccount.
	serviceAccount string
	// args are the manager container's arguments, as rendered by the chart.
	args []string
	// env is the container's environment, resolved as the kubelet would.
	env []string
	// configFile is the ConfigMap's configuration file, written where --config points.
	configFile string
	// kubeconfig authenticates as serviceAccount.
	kubeconfig string
}

// managerRunOf reads the chart's Deployment and the ConfigMap it mounts, writes the
// configuration file into the test's directory and returns how to run the manager.
func managerRunOf(ctx context.Context, t *testing.T, s *suite) managerRun {
	d, err := s.cs.AppsV1().Deployments(releaseNamespace).Get(ctx, releaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}
	pod := d.Spec.Template.Spec
	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "manager" {
			c = &pod.Containers[i]
		}
	}
	if c == nil {
		t.Fatalf("Deployment %s has no container named manager", d.Name)
	}
	run := managerRun{serviceAccount: pod.ServiceAccountName, args: c.Args}

	// The configuration file: the key of the ConfigMap volume mounted where --config
	// points.
	configPath, ok := argValue(c.Args, "config")
	if !ok {
		t.Fatalf("the manager's arguments %v have no --config", c.Args)
	}
	configMap := ""
	for _, mount := range c.VolumeMounts {
		if mount.MountPath != path.Dir(configPath) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == mount.Name && v.ConfigMap != nil {
				configMap = v.ConfigMap.Name
			}
		}
	}
	if configMap == "" {
		t.Fatalf("no ConfigMap volume is mounted at %s, where --config=%s points", path.Dir(configPath), configPath)
	}
	cm, err := s.cs.CoreV1().ConfigMaps(releaseNamespace).Get(ctx, configMap, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's configuration ConfigMap: %v", err)
	}
	data, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s (--config=%s)", configMap, path.Base(configPath), configPath)
	}
	run.configFile = filepath.Join(s.dir, "config.yaml")
	if err := os.WriteFile(run.configFile, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("the manager's configuration file from ConfigMap %s:\n%s", configMap, data)

	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			run.env = append(run.env, e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			run.env = append(run.env, fmt.Sprintf("%s=%d", e.Name, c.Resources.Limits.Memory().Value()))
		default:
			t.Fatalf("environment variable %s of the manager container: the test cannot resolve %+v outside a pod", e.Name, e.ValueFrom)
		}
	}
	return run
}

// argValue returns the value of --name=value in args, and whether it is there.
func argValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// manager is one bin/manager process, standing for one pod of the Deployment.
type manager struct {
	name    string
	proc    *localcluster.Process
	logPath string
	// metricsURL serves /metrics, /metrics/atlantis and /status; healthURL /readyz.
	metricsURL, healthURL string
	http                  *http.Client
	// killed is set once the test has killed the process; stopped once it is gone.
	killed, stopped bool
}

// startManager starts a manager process with the chart's arguments, the metrics and
// health endpoints on free local ports, and the ServiceAccount's kubeconfig.
func (s *suite) startManager(t *testing.T, name string) *manager {
	return s.startManagerWith(t, name, s.run)
}

// startManagerWith starts a manager process as run says (the fault tests change the
// configuration file and the kubeconfig), with the metrics and health endpoints on
// free local ports.
func (s *suite) startManagerWith(t *testing.T, name string, run managerRun) *manager {
	metricsPort, err := localcluster.FreeLoopbackPort()
	must(t, "a port for /metrics", err)
	healthPort, err := localcluster.FreeLoopbackPort()
	must(t, "a port for /healthz", err)
	replaced := map[string]string{
		"config":                    run.configFile,
		"metrics-bind-address":      fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"health-probe-bind-address": fmt.Sprintf("127.0.0.1:%d", healthPort),
	}
	args := make([]string, 0, len(run.args))
	for _, a := range run.args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := replaced[name]; ok {
			a = "--" + name + "=" + v
			delete(replaced, name)
		}
		args = append(args, a)
	}
	if len(replaced) > 0 {
		t.Fatalf("the chart's manager arguments %v lack %v, which the test replaces", run.args, replaced)
	}

	m := &manager{
		name:       name,
		logPath:    filepath.Join(s.dir, name+".log"),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d", metricsPort),
		healthURL:  fmt.Sprintf("http://127.0.0.1:%d", healthPort),
		http:       &http.Client{Timeout: 5 * time.Second},
	}
	logFile, err := os.Create(m.logPath)
	must(t, "the manager's log", err)
	defer func() { _ = logFile.Close() }() // the child has its own descriptor

	cmd := exec.Command(filepath.Join(s.bin, "manager"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The environment of this test without its KUBECONFIG, then the pod's.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(append(cmd.Env, "KUBECONFIG="+run.kubeconfig), run.env...)
	if m.proc, err = localcluster.StartProcess(cmd); err != nil {
		t.Fatal(err)
	}
	s.managers = append(s.managers, m)
	t.Logf("%s: pid %d, %s, log %s", name, m.proc.Pid(), strings.Join(args, " "), m.logPath)
	return m
}

// ready reports whether /readyz answers 200; an exited process is an error.
func (m *manager) ready(ctx context.Context) (bool, error) {
	if err := m.exited(); err != nil {
		return false, err
	}
	resp, err := m.get(ctx, m.healthURL+"/readyz")
	if err != nil {
		return false, nil //nolint:nilerr // not listening yet
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// exited returns an error when the process has exited.
func (m *manager) exited() error {
	select {
	case <-m.proc.Done():
		return fmt.Errorf("%s exited with code %d; see %s:\n%s", m.name, m.proc.ExitCode(), m.logPath, m.logTail(20))
	default:
		return nil
	}
}

// status reads /status.
func (m *manager) status(ctx context.Context) (orchestrator.OrchestratorStatus, error) {
	var st orchestrator.OrchestratorStatus
	if err := m.exited(); err != nil {
		return st, err
	}
	resp, err := m.get(ctx, m.metricsURL+operator.StatusPath)
	if err != nil {
		return st, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s %s: %s", m.name, operator.StatusPath, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("%s %s: %w", m.name, operator.StatusPath, err)
	}
	return st, nil
}

// metrics scrapes /metrics.
func (m *manager) metrics(ctx context.Context) (promMetrics, error) {
	resp, err := m.get(ctx, m.metricsURL+"/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", m.name, resp.Status)
	}
	pm, err := managerproc.ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", m.name, err)
	}
	return promMetrics(pm), nil
}

func (m *manager) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return m.http.Do(req)
}

// kill ends the process with SIGKILL, as a node failure or an OOM kill would: no
// release of the election Lease, no graceful shutdown.
func (m *manager) kill(t *testing.T) {
	must(t, "killing "+m.name, m.proc.Signal(syscall.SIGKILL))
	<-m.proc.Done()
	m.killed = true
}

// stop stops the process with SIGTERM (SIGKILL after managerStopTimeout). A manager
// that exited before without being killed is an error.
func (m *manager) stop() error {
	if m.stopped {
		return nil
	}
	m.stopped = true
	if m.killed {
		return nil
	}
	if err := m.exited(); err != nil {
		return fmt.Errorf("%s stopped by itself: %w", m.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), managerStopTimeout)
	defer cancel()
	return m.proc.Stop(ctx)
}

// stopManagers stops every manager and fails the test when a manager's log shows
// that the API server refused it something: the chart's RBAC lacks a permission.
func (s *suite) stopManagers(t *testing.T) {
	for _, m := range s.managers {
		if err := m.stop(); err != nil {
			t.Error(err)
		}
		if lines := m.forbidden(s.notReady...); len(lines) > 0 {
			t.Errorf("%s was forbidden what it needs (the chart's RBAC lacks a permission); %d log lines like:%s",
				m.name, len(lines), joinLines(lines[:min(len(lines), 5)]))
		}
	}
}

// rbacDenial matches the API server's authorization error, `... is forbidden: User
// "system:serviceaccount:ns:name" cannot list resource ...`, as it appears in a JSON
// log line (quotes escaped). Other Forbidden errors, such as creating an Event in a
// namespace being deleted, are not about RBAC and are not matched.
var rbacDenial = regexp.MustCompile(`forbidden: User \\?"[^"\\]+\\?" cannot `)

// window is a span of time, ends included.
type window struct{ from, to time.Time }

// contains reports whether t is in w. Log times have whole seconds, so w is
// widened to the seconds it touches.
func (w window) contains(t time.Time) bool {
	return !t.Before(w.from.Truncate(time.Second)) && !t.After(w.to)
}

// forbidden returns the log lines with an RBAC denial, leaving out the JSON lines
// logged in one of the windows notReady: spans in which the API server was
// restarting and not yet ready (its /readyz failing), when its authorizer denies
// everything its caches do not hold yet. Denials then are the API server's, not
// gaps in the chart's RBAC.
func (m *manager) forbidden(notReady ...window) []string {
	f, err := os.Open(m.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !rbacDenial.MatchString(line) {
			continue
		}
		// The message and the error, without the stack trace.
		var entry struct{ Msg, Error, Ts string }
		if json.Unmarshal([]byte(line), &entry) == nil {
			if at, err := time.Parse(time.RFC3339Nano, entry.Ts); err == nil &&
				slices.ContainsFunc(notReady, func(w window) bool { return w.contains(at) }) {
				continue
			}
			if entry.Error != "" {
				line = entry.Msg + ": " + entry.Error
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// logTail returns the last n lines of the log.
func (m *manager) logTail(n int) string {
	lines := m.logLines()
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logErrors returns the last n lines of the log at level error.
func (m *manager) logErrors(n int) string {
	var errs []string
	for _, l := range m.logLines() {
		if strings.Contains(l, `"level":"error"`) {
			errs = append(errs, l)
		}
	}
	return strings.Join(errs[max(0, len(errs)-n):], "\n")
}

func (m *manager) logLines() []string {
	data, err := os.ReadFile(m.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

// promMetrics are scraped series (test/harness/managerproc reads the text format), with
// the lookup the tests use.
type promMetrics managerproc.Metrics

// value returns the value of the series of family name with the given label values
// (name, value pairs), and whether it is there.
func (p promMetrics) value(name string, labels ...string) (float64, bool) {
	for _, series := range p[name] {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && series.Labels[labels[i]] == labels[i+1]
		}
		if match {
			return series.Value, true
		}
	}
	return 0, false
}

// leader returns the one running manager whose /status says it leads.
func (s *suite) leader(ctx context.Context) (*manager, error) {
	var leaders []*manager
	for _, m := range s.managers {
		if m.killed || m.stopped {
			continue
		}
		st, err := m.status(ctx)
		if err != nil {
			return nil, err
		}
		if st.Leader {
			leaders = append(leaders, m)
		}
	}
	if len(leaders) != 1 {
		return nil, fmt.Errorf("%d managers say they lead, want one", len(leaders))
	}
	return leaders[0], nil
}
