package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseSizes(t *testing.T) {
	if s, err := ParseSizes("50, 100,200"); err != nil || len(s) != 3 || s[2] != 200 {
		t.Fatalf("50,100,200: %v %v", s, err)
	}
	for _, bad := range []string{"", "1", "300", "50,,100", "many"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The table shows every point's figures, "never" for what did not happen.
func TestScaleTable(t *testing.T) {
	r := &ScaleResult{Points: []ScalePoint{
		{Nodes: 50, ConvergeSeconds: 12.34, IdleCPUPercent: 0.41, IdleCPUMax: 0.6, RSSMiB: 30.5, RSSMaxMiB: 33,
			PrivateMiB: 11.25, UnderlayBps: 2100, DataDatagramsPs: 40, Killed: 5, WithdrawSeconds: 6.5},
		{Nodes: 200, ConvergeSeconds: -1, Exited: 3, DuplicateSubnets: 2, WithdrawSeconds: -1},
	}}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	var rows [][]string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "50" || f[0] == "200") {
			rows = append(rows, f)
		}
	}
	if len(rows) != 2 || strings.Join(rows[0][:3], " ") != "50 12.3 s" || !strings.Contains(strings.Join(rows[0], " "), "33.0 MiB 11.2 MiB") ||
		rows[1][1] != "never" || rows[1][len(rows[1])-1] != "never" {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"converge_seconds": -1`) {
		t.Fatalf("json: %v\n%s", err, b.String())
	}
}
