package doctor

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/peer"
)

// run runs one check and returns its findings.
func run(check func(*findings, *api.Status), s *api.Status) []Finding {
	var f findings
	check(&f, s)
	return f
}

// want is what a finding must say: its verdict and parts of its text and fix.
type want struct {
	verdict  string
	what     string // a part of What
	fix      string // a part of Fix; "" for no fix at all
	fixAnyOK bool   // any Fix will do
}

func expect(t *testing.T, name string, got []Finding, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("%s: %d findings %+v, want %d", name, len(got), got, len(wants))
		return
	}
	for i, w := range wants {
		g := got[i]
		if g.Verdict != w.verdict || !strings.Contains(g.What, w.what) {
			t.Errorf("%s: finding %d is %s %q, want %s with %q", name, i, g.Verdict, g.What, w.verdict, w.what)
		}
		switch {
		case w.fixAnyOK:
		case w.fix == "" && g.Fix != "":
			t.Errorf("%s: finding %d has the fix %q, want none", name, i, g.Fix)
		case !strings.Contains(g.Fix, w.fix):
			t.Errorf("%s: finding %d has the fix %q, want it to contain %q", name, i, g.Fix, w.fix)
		}
	}
}

// twoKeys returns two cluster keys whose ids differ (ids are one byte, so
// two random keys share one now and then).
func twoKeys(t *testing.T) (a, b []byte) {
	t.Helper()
	a, err := encap.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err = encap.GenerateKey(); err != nil {
			t.Fatal(err)
		}
		if encap.KeyID(a) != encap.KeyID(b) {
			return a, b
		}
	}
}

// keyFile writes keys, one a line, to a new file with mode perm.
func keyFile(t *testing.T, perm os.FileMode, keys ...[]byte) string {
	t.Helper()
	text := "# cluster keys, the one sent with first\n\n"
	for _, k := range keys {
		text += encap.FormatKey(k) + "\n"
	}
	path := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func TestCheckKeys(t *testing.T) {
	a, b := twoKeys(t)
	ida, idb := int(encap.KeyID(a)), int(encap.KeyID(b))
	enc := func(file string, primary int, ids ...int) *api.Status {
		return &api.Status{Listen: netip.MustParseAddrPort("0.0.0.0:6081"), Encryption: api.EncryptionStatus{
			Enabled: true, Cipher: "aes-256-gcm", KeyIDs: ids, Primary: primary, KeyFile: file}}
	}
	for _, tc := range []struct {
		name string
		s    *api.Status
		want want
	}{
		{"insecure", &api.Status{Listen: netip.MustParseAddrPort("0.0.0.0:7000")},
			want{Warn, "runs --insecure: anyone who can reach UDP 7000", "weft keygen", false}},
		{"readable by others", enc(keyFile(t, 0o644, a), ida, ida),
			want{Fail, "readable by others", "chmod 600", false}},
		{"group readable", enc(keyFile(t, 0o640, a), ida, ida),
			want{Fail, "readable by others", "chmod 600", false}},
		{"missing file", enc(filepath.Join(t.TempDir(), "gone.key"), ida, ida),
			want{Fail, "no such file", "", true}},
		{"file lacks a running key", enc(keyFile(t, 0o600, a), ida, ida, idb),
			want{Warn, "a restart would change its keys", "hold the running keys", false}},
		{"file has a key the node lacks", enc(keyFile(t, 0o600, a, b), ida, ida),
			want{Warn, "a restart would change its keys", "hold the running keys", false}},
		{"first line is not the primary", enc(keyFile(t, 0o600, a, b), idb, idb, ida),
			want{Warn, fmt.Sprintf("sends with key %d but", idb), fmt.Sprintf("put key %d on the first line", idb), false}},
		{"matching, one key", enc(keyFile(t, 0o600, a), ida, ida),
			want{OK, "is private and matches the running keys", "", false}},
		{"matching, two keys in another order", enc(keyFile(t, 0o600, b, a), idb, ida, idb),
			want{OK, "is private and matches the running keys", "", false}},
		{"owner read only", enc(keyFile(t, 0o400, a), ida, ida),
			want{OK, "matches the running keys", "", false}},
	} {
		expect(t, tc.name, run(checkKeys, tc.s), tc.want)
	}
}

func TestCheckClock(t *testing.T) {
	at := func(d time.Duration) *api.Status {
		return &api.Status{Encryption: api.EncryptionStatus{Enabled: true, Session: encap.NewSessionID(0, time.Now().Add(d))}}
	}
	expect(t, "session in the future", run(checkClock, at(time.Hour)),
		want{Fail, "the clock", "fix the clock (NTP)", false})
	expect(t, "session in the past", run(checkClock, at(-time.Hour)),
		want{OK, "clock is past the start of the node's sending session", "", false})
	expect(t, "session just started", run(checkClock, at(0)),
		want{OK, "clock is past", "", false})
	old := &api.Status{Encryption: api.EncryptionStatus{Enabled: true, Session: uint64(time.Now().Add(time.Hour).UnixNano())}}
	expect(t, "an earlier version's id in the future", run(checkClock, old),
		want{Fail, "the clock", "fix the clock (NTP)", false})
	expect(t, "insecure (no session)", run(checkClock, &api.Status{}))
}

func TestCheckPeers(t *testing.T) {
	answered := time.Now()
	p := func(name, state, reason string) api.PeerStatus {
		return api.PeerStatus{Name: name, Subnet: netip.MustParsePrefix("10.244.2.0/24"),
			Endpoint: netip.MustParseAddrPort("192.0.2.2:6082"), State: peer.Alive,
			Path: api.PathStatus{State: state, Reason: reason, RTTMs: 0.25, LastOK: &answered}}
	}
	expect(t, "no peers", run(checkPeers, &api.Status{}),
		want{Warn, "no peers", "--peer", false})
	expect(t, "paths", run(checkPeers, &api.Status{Peers: []api.PeerStatus{
		p("h2", api.PathOK, ""),
		p("h3", api.PathUnreachable, "3 probes unanswered"),
		p("h4", api.PathUnknown, "no answer yet"),
	}}),
		want{OK, "path to h2 (10.244.2.0/24, 192.0.2.2:6082) is ok: rtt 0.25 ms", "", false},
		want{Fail, "path to h3 (10.244.2.0/24) is unreachable: 3 probes unanswered", "allow UDP port 6082 between the nodes", false},
		want{Warn, "path to h4 (10.244.2.0/24) is not known yet: no answer yet", "", false},
	)
}

func TestCheckDrops(t *testing.T) {
	expect(t, "hinted drops", run(checkDrops, &api.Status{Drops: map[string]uint64{
		"unknown_peer": 4, "no_route": 9, "unknown_key": 3, "old_session": 0, "replay": 2,
	}}),
		// Sorted by reason; no_route and replay have no hint, old_session is 0.
		want{Warn, "3 packets dropped as unknown_key since start", dropHints["unknown_key"], false},
		want{Warn, "4 packets dropped as unknown_peer since start", dropHints["unknown_peer"], false},
	)
	expect(t, "only plain drops", run(checkDrops, &api.Status{Drops: map[string]uint64{"no_route": 9, "unknown_key": 0}}),
		want{OK, "no drops that point at a misconfiguration", "", false})
	expect(t, "no drops", run(checkDrops, &api.Status{}),
		want{OK, "no drops that point at a misconfiguration", "", false})
	for r, h := range dropHints {
		if h == "" {
			t.Errorf("drop reason %s has an empty hint: its drops would never be reported", r)
		}
	}
}

func TestWrite(t *testing.T) {
	fs := []Finding{
		{OK, "node h1 is running", ""},
		{Warn, "no peers", "give --peer flags"},
		{Fail, "tun weft0 is down", "ip link set weft0 up"},
	}
	var b strings.Builder
	if failed := Write(&b, fs); !failed {
		t.Error("Write with a FAIL finding reported no failure")
	}
	want := "ok    node h1 is running\n" +
		"warn  no peers\n" +
		"      fix: give --peer flags\n" +
		"FAIL  tun weft0 is down\n" +
		"      fix: ip link set weft0 up\n"
	if b.String() != want {
		t.Errorf("Write printed\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if failed := Write(&b, fs[:2]); failed {
		t.Error("Write with warnings only reported a failure")
	}
	if failed := Write(&b, nil); failed {
		t.Error("Write with no findings reported a failure")
	}
}
