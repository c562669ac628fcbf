package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// WriteReports writes the table to w and, when named, the JSON results and
// the SVG chart to those files.
func (res *Result) WriteReports(w io.Writer, jsonFile, chartFile string) error {
	errs := []error{res.WriteTable(w)}
	if jsonFile != "" {
		errs = append(errs, writeFile(jsonFile, res.WriteJSON))
	}
	if chartFile != "" {
		errs = append(errs, writeFile(chartFile, res.WriteChart))
	}
	return errors.Join(errs...)
}

// ReadFile reads a results file that WriteReports (or WriteJSON) wrote.
func ReadFile(name string) (*Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// writeFile creates name and fills it with write.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// ParseUnderlays reads --underlay: comma-separated modes (wire, offload,
// wire6), or both (wire and offload).
func ParseUnderlays(s string) ([]Underlay, error) {
	if s == "both" {
		return []Underlay{Wire, Offload}, nil
	}
	var out []Underlay
	for m := range strings.SplitSeq(s, ",") {
		u := Underlay(strings.TrimSpace(m))
		if !slices.Contains(Underlays, u) {
			return nil, fmt.Errorf("%q: want wire, offload, wire6 (comma-separated) or both", m)
		}
		out = append(out, u)
	}
	return out, nil
}

// PrepareOutputs creates logDir (if set) and creates or opens each named
// output file (keyed by what to call it in an error), so a run fails at once
// rather than after its traffic; empty names are skipped.
func PrepareOutputs(logDir string, files map[string]string) error {
	if logDir != "" {
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return fmt.Errorf("--log-dir: %w", err)
		}
	}
	for what, name := range files {
		if name == "" {
			continue
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		f.Close()
	}
	return nil
}
