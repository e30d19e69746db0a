// Package chartmemory reads how the chart runs the manager's memory by default
// (resources.limits.memory, goMemLimitPercent and goGC in its values.yaml), so that
// the programs that run bin/manager (make bench, make bench-scale) run it as the
// chart does.
package chartmemory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// ValuesPath is the chart's values file, under the repository's root.
var ValuesPath = filepath.Join("charts", "atlantis-lock-operator", "values.yaml")

// Memory is how the chart runs the manager's memory by default
// (resources.limits.memory, goMemLimitPercent, goGC in its values.yaml): issue 13's
// targets are for those defaults.
type Memory struct {
	// LimitBytes is the container's memory limit, which the chart gives the manager
	// as CONTAINER_MEMORY_LIMIT: above it the kubelet kills the pod.
	LimitBytes int64 `json:"limitBytes"`
	// LimitPercent is --memory-limit-percent: Go's soft memory limit in percent of
	// LimitBytes.
	LimitPercent int `json:"limitPercent"`
	// GOGC is the manager's GOGC; 0 leaves Go's default.
	GOGC int `json:"gogc"`
}

// chartValues is the part of values.yaml that sets the manager's memory.
type chartValues struct {
	Resources struct {
		Limits struct {
			Memory string `json:"memory"`
		} `json:"limits"`
	} `json:"resources"`
	GoMemLimitPercent int `json:"goMemLimitPercent"`
	GoGC              int `json:"goGC"`
}

// Read reads the chart's memory defaults from its values file under root.
func Read(root string) (Memory, error) {
	path := filepath.Join(root, ValuesPath)
	data, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, fmt.Errorf("the chart's memory defaults: %w", err)
	}
	var v chartValues
	if err := yaml.Unmarshal(data, &v); err != nil {
		return Memory{}, fmt.Errorf("the chart's memory defaults: %s: %w", path, err)
	}
	if v.Resources.Limits.Memory == "" {
		return Memory{}, fmt.Errorf("the chart's memory defaults: %s sets no resources.limits.memory", path)
	}
	limit, err := resource.ParseQuantity(v.Resources.Limits.Memory)
	if err != nil {
		return Memory{}, fmt.Errorf("the chart's memory defaults: %s: resources.limits.memory: %w", path, err)
	}
	if v.GoMemLimitPercent < 0 || v.GoMemLimitPercent > 100 || v.GoGC < 0 {
		return Memory{}, errors.New("the chart's memory defaults: goMemLimitPercent must be 0–100 and goGC not negative in " + path)
	}
	return Memory{LimitBytes: limit.Value(), LimitPercent: v.GoMemLimitPercent, GOGC: v.GoGC}, nil
}

// ManagerArgs are the manager's flags that the chart's deployment sets from these
// values.
func (m Memory) ManagerArgs() []string {
	if m.LimitPercent == 0 {
		return nil
	}
	return []string{"--memory-limit-percent=" + strconv.Itoa(m.LimitPercent)}
}

// ManagerEnv is the manager's environment that the chart's deployment sets from
// these values.
func (m Memory) ManagerEnv() []string {
	env := []string{"CONTAINER_MEMORY_LIMIT=" + strconv.FormatInt(m.LimitBytes, 10)}
	if m.GOGC > 0 {
		env = append(env, "GOGC="+strconv.Itoa(m.GOGC))
	}
	return env
}
