package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUnderlays(t *testing.T) {
	for in, want := range map[string]int{"wire": 1, "offload": 1, "both": 2} {
		if u, err := ParseUnderlays(in); err != nil || len(u) != want {
			t.Errorf("%s: %v %v", in, u, err)
		}
	}
	if _, err := ParseUnderlays("fast"); err == nil {
		t.Error("fast accepted")
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
