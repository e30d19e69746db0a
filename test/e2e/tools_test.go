//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubectl runs bin/kubectl as the cluster admin and returns its standard output,
// failing the test with its standard error when it fails.
func (s *suite) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.kubectlOut(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kubectlOut runs bin/kubectl as the cluster admin and returns its standard output;
// the error carries the command and its standard error.
func (s *suite) kubectlOut(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", s.cluster.KubeconfigPath(), "--cache-dir", filepath.Join(s.dir, "kubectl-cache")}, args...)
	return s.runTool(ctx, nil, "kubectl", args...)
}

// helm runs bin/helm as the cluster admin, with its configuration, cache and data in
// the test's directory, and fails the test when it fails.
func (s *suite) helm(t *testing.T, args ...string) string {
	t.Helper()
	helmHome := filepath.Join(s.dir, "helm")
	env := []string{
		"KUBECONFIG=" + s.cluster.KubeconfigPath(),
		"HELM_CACHE_HOME=" + filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME=" + filepath.Join(helmHome, "data"),
	}
	out, err := s.runTool(t.Context(), env, "helm", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runTool runs a binary of bin/ with extra environment variables and returns its
// standard output.
func (s *suite) runTool(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// table is kubectl's table output: the header and one map of column to cell per row.
type table struct {
	header []string
	rows   []map[string]string
}

// parseTable reads kubectl's table output. Columns are cut where the header's
// column names start, since kubectl left-aligns cells under them and leaves empty
// cells blank (so splitting on spaces would shift the cells after an empty one).
func parseTable(out string) (table, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return table{}, fmt.Errorf("no table in %q", out)
	}
	head := lines[0]
	var tb table
	var starts []int
	for i := 0; i < len(head); i++ {
		if head[i] != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
			end := strings.IndexByte(head[i:], ' ')
			if end < 0 {
				end = len(head) - i
			}
			tb.header = append(tb.header, head[i:i+end])
		}
	}
	for _, line := range lines[1:] {
		row := map[string]string{}
		for c, start := range starts {
			end := len(line)
			if c+1 < len(starts) {
				end = min(starts[c+1], len(line))
			}
			if start < end {
				row[tb.header[c]] = strings.TrimSpace(line[start:end])
			}
		}
		tb.rows = append(tb.rows, row)
	}
	return tb, nil
}

// row returns the row whose NAME is name.
func (tb table) row(name string) (map[string]string, bool) {
	for _, r := range tb.rows {
		if r["NAME"] == name {
			return r, true
		}
	}
	return nil, false
}
