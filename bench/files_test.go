package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseUnderlays(t *testing.T) {
	for in, want := range map[string][]Underlay{
		"wire": {Wire}, "offload": {Offload}, "wire6": {Wire6}, "both": {Wire, Offload},
		"wire, wire6": {Wire, Wire6}, "wire6,offload": {Wire6, Offload},
	} {
		if u, err := ParseUnderlays(in); err != nil || !slices.Equal(u, want) {
			t.Errorf("%s: %v %v, want %v", in, u, err, want)
		}
	}
	for _, bad := range []string{"fast", "", "wire,,offload", "both,wire6", "wire4"} {
		if _, err := ParseUnderlays(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := (Config{Binary: "/bin/true", WireguardGo: "/bin/true", Underlays: []Underlay{Wire6, Wire6}}).Validate(); err == nil {
		t.Error("wire6 twice accepted")
	}
}

// Outputs that cannot be written fail before the run, naming the flag; the
// results of a run survive a round trip through their file.
func TestOutputs(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs", "deep")
	if err := PrepareOutputs(logs, map[string]string{"--json": filepath.Join(dir, "r.json"), "--chart": ""}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(logs); err != nil || !st.IsDir() {
		t.Fatalf("log dir: %v", err)
	}
	err := PrepareOutputs("", map[string]string{"--chart": filepath.Join(dir, "no", "such", "c.svg")})
	if err == nil || !strings.HasPrefix(err.Error(), "--chart: ") {
		t.Fatalf("unwritable chart: %v", err)
	}
	res := syntheticResult()
	var table strings.Builder
	jsonFile, chart := filepath.Join(dir, "r.json"), filepath.Join(dir, "c.svg")
	if err := res.WriteReports(&table, jsonFile, chart); err != nil || table.Len() == 0 {
		t.Fatalf("WriteReports: %v", err)
	}
	back, err := ReadFile(jsonFile)
	if err != nil || len(back.Runs) != len(res.Runs) || len(res.Runs) == 0 {
		t.Fatalf("ReadFile: %v", err)
	}
	if b, _ := os.ReadFile(chart); !strings.Contains(string(b), "<svg") {
		t.Fatal("no chart written")
	}
}
