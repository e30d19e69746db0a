package benchutil

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
)

// Machine describes where a measurement ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel,omitempty"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"goVersion"`
	// LoadBefore and LoadAfter are /proc/loadavg when the run started and ended:
	// other work on the machine competes with the control plane for its CPUs.
	LoadBefore string `json:"loadBefore,omitempty"`
	LoadAfter  string `json:"loadAfter,omitempty"`
}

// ThisMachine describes the machine this runs on, with the load average now.
func ThisMachine() Machine {
	return Machine{
		CPUs:       runtime.NumCPU(),
		CPUModel:   cpuModel(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GoVersion:  runtime.Version(),
		LoadBefore: LoadAvg(),
	}
}

// LoadAvg returns the 1, 5 and 15 minute load averages of /proc/loadavg, or "".
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return ""
	}
	return strings.Join(fields[:3], " ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// Revision returns the commit checked out in the repository at root, with
// "+changes" when the working tree differs from it, or "" without git.
func Revision(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(head))
	if status, err := exec.Command("git", "-C", root, "status", "--porcelain").Output(); err == nil && len(status) > 0 {
		rev += "+changes"
	}
	return rev
}

// Row is one line of a report: a measurement and, when there is one, its target.
type Row struct {
	Metric   string `json:"metric"`
	Measured string `json:"measured"`
	Target   string `json:"target,omitempty"`
	// Met is nil for lines without a target.
	Met *bool `json:"met,omitempty"`
}

// Info is a row without a target.
func Info(metric, measured string) Row {
	return Row{Metric: metric, Measured: measured}
}

// PrintRows writes rows as an aligned table whose target column is headed
// targetHeader.
func PrintRows(w io.Writer, targetHeader string, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tmeasured\t%s\tmet?\n", targetHeader)
	fmt.Fprintf(tw, "------\t--------\t%s\t----\n", strings.Repeat("-", len([]rune(targetHeader))))
	for _, row := range rows {
		met := ""
		if row.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*row.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Metric, row.Measured, row.Target, met)
	}
	return tw.Flush()
}

// WriteJSON writes v as indented JSON to path, or to standard output for "-".
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
