package agent

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A taken port fails preflight with one line naming its flag; free ones
// are bound (data, metrics) or let go again (gossip).
func TestPreflight(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer takenUDP.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	base := func() Config {
		c := DefaultConfig()
		c.Node.Listen = netip.MustParseAddrPort("127.0.0.1:0")
		c.GossipPort, c.StateDir = 0, filepath.Join(t.TempDir(), "state")
		return c
	}
	for _, tc := range []struct {
		name, want string
		change     func(*Config)
	}{
		{"data port", "--listen " + takenUDP.LocalAddr().String() + ": port already in use", func(c *Config) {
			c.Node.Listen = netip.MustParseAddrPort(takenUDP.LocalAddr().String())
		}},
		{"metrics port", "--metrics-addr", func(c *Config) { c.MetricsAddr = taken.Addr().String() }},
		{"gossip port", "--gossip-port " + strconv.Itoa(taken.Addr().(*net.TCPAddr).Port) + ": port already in use", func(c *Config) {
			c.GossipPort = taken.Addr().(*net.TCPAddr).Port
		}},
		{"state dir", "--state-dir", func(c *Config) {
			c.GossipPort = int(freePort(t))
			c.StateDir = filepath.Join(t.TempDir(), "file", "state") // under a file
			os.WriteFile(filepath.Dir(c.StateDir), nil, 0o644)
		}},
	} {
		c := base()
		tc.change(&c)
		h, err := preflight(&c, lo)
		if err == nil {
			h.close()
			t.Errorf("%s: preflight passed", tc.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q; want one line with %q", tc.name, msg, tc.want)
		}
	}

	c := base()
	c.MetricsAddr, c.GossipPort = "127.0.0.1:0", int(freePort(t))
	h, err := preflight(&c, lo)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if len(h.conns) == 0 || h.metrics == nil {
		t.Fatalf("preflight holds %+v; want the data socket and the metrics listener", h)
	}
	if _, err := os.Stat(c.StateDir); err != nil {
		t.Errorf("state dir not made: %v", err)
	}
	// The gossip port is free again for memberlist.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.GossipPort)))
	if err != nil {
		t.Fatalf("gossip port still held after preflight: %v", err)
	}
	ln.Close()
}
