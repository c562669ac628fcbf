package api

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The peer table keeps its columns in place and adds CHECKED last, so
// scripts that read the first columns still work.
func TestWriteTextPeerRow(t *testing.T) {
	checked := time.Now().Add(-3 * time.Second)
	s := Status{Peers: []PeerStatus{{
		Name: "h2", Subnet: netip.MustParsePrefix("10.244.2.0/24"), Endpoint: netip.MustParseAddrPort("192.0.2.2:6081"),
		State: "static", TxPackets: 7,
		Path: PathStatus{State: PathOK, RTTMs: 0.25, LastOK: &checked, Checked: &checked},
	}}}
	var b strings.Builder
	s.WriteText(&b)
	var header, row []string
	for line := range strings.Lines(b.String()) {
		switch f := strings.Fields(line); {
		case len(f) > 0 && f[0] == "PEER":
			header = f
		case len(f) > 0 && f[0] == "h2":
			row = f
		}
	}
	want := []string{"h2", "10.244.2.0/24", "192.0.2.2:6081", "static", "-", "ok", "0.25ms", "0%", "0", "0", "7", "0", "3s", "ago"}
	if strings.Join(row, " ") != strings.Join(want, " ") || header[len(header)-1] != "CHECKED" {
		t.Fatalf("header %q\nrow %q, want %q", header, row, want)
	}
}

func TestPathStatusJSON(t *testing.T) {
	b, err := json.Marshal(PathStatus{State: PathUnknown})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, `"checked":null`) {
		t.Fatalf("path without evidence: %s", got)
	}
}

// The session id is a nanosecond time, beyond 2^53: as a JSON number jq 1.6
// and JavaScript round it, so status --json prints it as a string, and the
// Go readers (weft doctor, e2e) read it back exactly.
func TestSessionJSONIsString(t *testing.T) {
	in := Status{Encryption: EncryptionStatus{Enabled: true, Session: 1795658495574189267}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"session":"1795658495574189267"`) {
		t.Fatalf("session not a string: %s", b)
	}
	var m struct{ Encryption map[string]any }
	if err := json.Unmarshal(b, &m); err != nil || m.Encryption["session"] != "1795658495574189267" {
		t.Fatalf("generic reader sees %#v (%v)", m.Encryption["session"], err)
	}
	var out Status
	if err := json.Unmarshal(b, &out); err != nil || out.Encryption.Session != in.Encryption.Session {
		t.Fatalf("read back %d, %v", out.Encryption.Session, err)
	}
}
