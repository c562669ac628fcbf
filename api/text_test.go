package api

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/peer"
)

// textStatus is a node with an ok peer, an unreachable one and a dead one.
func textStatus() Status {
	lastOK := time.Now()
	return Status{
		Name: "h1", Address: netip.MustParseAddr("10.244.1.1"), Subnet: netip.MustParsePrefix("10.244.1.0/24"),
		Network: netip.MustParsePrefix("10.244.0.0/16"), MTU: 1400, UptimeSeconds: 3725,
		Listen:   netip.MustParseAddrPort("0.0.0.0:6081"),
		Underlay: Underlay{Interface: "eth0", Addr: netip.MustParseAddr("192.0.2.1"), MTU: 1500, Why: "default route"},
		Tun:      TunStatus{Name: "weft0", Driver: "wireguard"},
		Queues:   []QueueStatus{{Queue: 0, TunReadPackets: 10, TunWritePackets: 20}, {Queue: 1, TunReadPackets: 11, TunWritePackets: 21}},
		Offloads: OffloadStatus{Tun: TunOffloads{TSO: true, GRO: true}, UDP: UDPOffloads{GSO: true, Reason: "no UDP GRO in this kernel"}},
		Peers: []PeerStatus{
			{Name: "h2", Subnet: netip.MustParsePrefix("10.244.2.0/24"), Endpoint: netip.MustParseAddrPort("192.0.2.2:6081"),
				State: peer.Alive, RxPackets: 11, RxBytes: 1111, TxPackets: 22, TxBytes: 2222,
				Path: PathStatus{State: PathOK, RTTMs: 0.125, Loss: 0.1, LastOK: &lastOK}},
			{Name: "h3", Subnet: netip.MustParsePrefix("10.244.3.0/24"), Endpoint: netip.MustParseAddrPort("192.0.2.3:6081"),
				State: peer.Static, Path: PathStatus{State: PathUnreachable, Reason: "5 probes unanswered", Loss: 1}},
			{Name: "h4", Subnet: netip.MustParsePrefix("10.244.4.0/24"), Endpoint: netip.MustParseAddrPort("192.0.2.4:6081"),
				State: peer.Dead, Path: PathStatus{State: PathUnknown, Reason: "not probed: the peer is dead"}},
		},
	}
}

func TestStatusWriteText(t *testing.T) {
	s := textStatus()
	var b strings.Builder
	s.WriteText(&b)
	out := b.String()
	lines := strings.Split(out, "\n")

	for _, want := range []string{
		"node      h1\n",
		"mtu       1400\n",
		"uptime    1h2m5s\n",
		"underlay  eth0 192.0.2.1 (mtu 1500, default route)\n",
		"tun       weft0 (wireguard)\n",
		"queues    2 (packets per queue, tun→wire: 10 11; wire→tun: 20 21)\n",
		"offloads  tun tso=on gro=on, udp gso=on gro=off (no UDP GRO in this kernel)\n",
		"security  NONE (--insecure)",
		"\npath to h3 unreachable: 5 probes unanswered\n",
		"\ndrops     none\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"path to h2", "path to h4", "trace     "} {
		if strings.Contains(out, bad) {
			t.Errorf("status text has %q:\n%s", bad, out)
		}
	}

	// The peer table: a header and one aligned row a peer.
	hdr := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "PEER ") })
	if hdr < 0 || hdr+3 >= len(lines) {
		t.Fatalf("no peer table:\n%s", out)
	}
	wantHeader := []string{"PEER", "SUBNET", "ENDPOINT", "STATE", "LAST", "HEARD", "PATH", "RTT", "LOSS",
		"RX", "PKTS", "RX", "BYTES", "TX", "PKTS", "TX", "BYTES", "CHECKED"}
	if got := strings.Fields(lines[hdr]); !slices.Equal(got, wantHeader) {
		t.Errorf("header %q, want the fields %q", lines[hdr], wantHeader)
	}
	for i, want := range [][]string{
		{"h2", "10.244.2.0/24", "192.0.2.2:6081", "alive", "-", "ok", "0.12ms", "10%", "11", "1111", "22", "2222", "-"},
		{"h3", "10.244.3.0/24", "192.0.2.3:6081", "static", "-", "unreachable", "-", "100%", "0", "0", "0", "0", "-"},
		{"h4", "10.244.4.0/24", "192.0.2.4:6081", "dead", "-", "unknown", "-", "0%", "0", "0", "0", "0", "-"},
	} {
		row := lines[hdr+1+i]
		if got := strings.Fields(row); !slices.Equal(got, want) {
			t.Errorf("row %d %q, want the fields %q", i, row, want)
		}
		// Columns line up with the header's.
		for _, col := range []string{"SUBNET", "ENDPOINT", "STATE", "PATH"} {
			if at := strings.Index(lines[hdr], col); at >= len(row) || row[at] == ' ' || row[at-1] != ' ' {
				t.Errorf("row %q: column %s (at %d) is not aligned with the header %q", row, col, at, lines[hdr])
			}
		}
	}
}

func TestStatusWriteTextVariants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Status)
		want   []string
		not    []string
	}{
		{"zero drops", func(s *Status) { s.Drops = map[string]uint64{"no_route": 0, "replay": 0} },
			[]string{"\ndrops     none\n"}, []string{"no_route"}},
		{"drops sorted", func(s *Status) {
			s.Drops = map[string]uint64{"unknown_peer": 2, "no_route": 15, "replay": 0, "auth_failed": 1}
		}, []string{"\ndrops     auth_failed=1 no_route=15 unknown_peer=2\n"}, []string{"replay", "none"}},
		{"the host's own multicast left out", func(s *Status) { s.Drops = map[string]uint64{DropMulticast: 2, "no_route": 0} },
			[]string{"\ndrops     none\n"}, []string{DropMulticast}},
		{"encrypted", func(s *Status) {
			s.Encryption = EncryptionStatus{Enabled: true, Cipher: "aes-256-gcm", KeyIDs: []int{3, 7}, Primary: 7, Session: 42, Rotations: 3, RekeyAfterSeconds: 120}
		}, []string{"security  aes-256-gcm, keys [3 7] (sending with 7), session 42 (rotated 3 times, every 2m0s)\n"}, []string{"NONE"}},
		{"insecure", func(s *Status) {},
			[]string{"security  NONE (--insecure): traffic is neither authenticated nor encrypted\n"}, nil},
		{"dual-stack", func(s *Status) {
			s.Address6, s.Subnet6 = netip.MustParseAddr("fd00:10:244:1::"), netip.MustParsePrefix("fd00:10:244:1::/64")
			s.Network6, s.Peers[0].Subnet6 = netip.MustParsePrefix("fd00:10:244::/56"), netip.MustParsePrefix("fd00:10:244:2::/64")
		}, []string{"address6  fd00:10:244:1::\nsubnet6   fd00:10:244:1::/64\nnetwork6  fd00:10:244::/56\n", "h2    10.244.2.0/24,fd00:10:244:2::/64 "}, nil},
		{"single-stack", func(s *Status) {}, nil, []string{"address6", "subnet6"}},
		{"trace readers", func(s *Status) { s.TraceReaders = 2 }, []string{"trace     2 weft trace session(s) attached\n"}, nil},
		{"no peers", func(s *Status) { s.Peers = nil }, []string{"\n(no peers)\n"}, []string{"path to"}},
		{"offload reasons", func(s *Status) {
			s.Offloads = OffloadStatus{Tun: TunOffloads{Reason: "water driver"}, UDP: UDPOffloads{GSO: true, GRO: true}}
		}, []string{"offloads  tun tso=off gro=off (water driver), udp gso=on gro=on\n"}, nil},
		{"heard", func(s *Status) {
			seen := time.Now().Add(-90 * time.Second)
			s.Peers[0].LastSeen = &seen
		}, []string{" 1m3", "s ago "}, nil}, // 1m30s, and a slow run's rounding
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := textStatus()
			tc.change(&s)
			var b strings.Builder
			s.WriteText(&b)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("status text lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("status text has %q:\n%s", n, b.String())
				}
			}
		})
	}
}

// status --json: the IPv6 keys appear only on a dual-stack node; the IPv4
// ones keep their names.
func TestStatusJSONDualStack(t *testing.T) {
	s := textStatus()
	b, err := json.Marshal(s)
	if err != nil || strings.Contains(string(b), "subnet6") || strings.Contains(string(b), "address6") || !strings.Contains(string(b), `"subnet":"10.244.1.0/24"`) {
		t.Fatalf("single-stack: %s, %v", b, err)
	}
	s.Address6, s.Subnet6, s.Network6 = netip.MustParseAddr("fd00:10:244:1::"), netip.MustParsePrefix("fd00:10:244:1::/64"), netip.MustParsePrefix("fd00:10:244::/56")
	s.Peers[0].Subnet6 = netip.MustParsePrefix("fd00:10:244:2::/64")
	b, _ = json.Marshal(s)
	for _, want := range []string{`"address6":"fd00:10:244:1::"`, `"subnet6":"fd00:10:244:1::/64"`, `"network6":"fd00:10:244::/56"`, `"subnet6":"fd00:10:244:2::/64"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %s in %s", want, b)
		}
	}
}
