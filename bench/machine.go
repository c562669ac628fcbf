package bench

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where the numbers were taken, so a reader can tell
// whether theirs should match.
type Machine struct {
	Kernel        string `json:"kernel"`
	OS            string `json:"os,omitempty"`
	CPUs          int    `json:"cpus"`
	CPUModel      string `json:"cpu_model,omitempty"`
	GoVersion     string `json:"go_version"`                // the harness's runtime
	WeftVersion   string `json:"weft_version,omitempty"`    // `weft version` of the benchmarked binary
	WeftGoVersion string `json:"weft_go_version,omitempty"` // the Go that built it
	WeftRevision  string `json:"weft_revision,omitempty"`   // VCS revision it was built from, "+dirty" if modified
	Iperf3        string `json:"iperf3,omitempty"`
}

// machineInfo gathers Machine; anything it cannot find stays empty.
func machineInfo(ctx context.Context, binary string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OS = keyValue("/etc/os-release", "PRETTY_NAME=", "")
	m.CPUModel = keyValue("/proc/cpuinfo", "model name", ":")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "iperf3", "--version").Output(); err == nil {
		m.Iperf3, _, _ = strings.Cut(strings.TrimSpace(string(out)), " (")
	}
	if binary == "" {
		return m
	}
	if out, err := exec.CommandContext(ctx, binary, "version").Output(); err == nil {
		m.WeftVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "weft ")
	}
	if bi, err := buildinfo.ReadFile(binary); err == nil {
		m.WeftGoVersion = bi.GoVersion
		var rev, dirty string
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "+dirty"
			}
		}
		if rev != "" {
			m.WeftRevision = rev + dirty
		}
	}
	return m
}

// keyValue returns the value of the first line of file starting with key,
// after sep (or right after key when sep is empty), unquoted and trimmed.
func keyValue(file, key, sep string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key)
		if !ok {
			continue
		}
		if sep != "" {
			if _, rest, ok = strings.Cut(rest, sep); !ok {
				continue
			}
		}
		return strings.Trim(strings.TrimSpace(rest), `"`)
	}
	return ""
}
