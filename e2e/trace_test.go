package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// weft trace on h2 shows a ping's packets both ways and a spoofed packet's
// drop with its reason, and --pcap writes the packets to a file that
// parses as raw IP.
func TestTrace(t *testing.T) {
	requireTools(t, "ping")
	_, nodes := insecureWeftLab(t, "tr", 3, "")
	h1, h2, h3 := nodes[0], nodes[1], nodes[2]
	// A peer the node does not know is one line and exit 1, not a silent
	// wait for packets that never come.
	out, err := h2.Host.Run(t.Context(), weftBin, "trace", "--run-dir", h2.RunDir, "--peer", "nosuch")
	if err == nil || strings.TrimSpace(out) != "weft trace: no peer named nosuch (weft status lists the peers)" {
		t.Fatalf("trace --peer nosuch: %v\n%s", err, out)
	}
	if err := h3.Stop(); err != nil { // h3's endpoint becomes a rogue peer's
		t.Fatal(err)
	}
	pcap := filepath.Join(t.TempDir(), "trace.pcap")
	tr := startTrace(t, h2, "--pcap", pcap)

	ping(t, h1, h2, 3)
	rogue := listenUDP(t, h3.Host, netip.AddrPortFrom(h3.Host.Addr, encap.Port))
	spoofed := packettest.UDP4(netip.MustParseAddrPort("10.244.1.5:4000"), netip.AddrPortFrom(h2.Addr, 7000), []byte("spoofed"), false)
	sendUDP(t, rogue, netip.AddrPortFrom(h2.Host.Addr, encap.Port), geneve(1, encap.ProtoIPv4, spoofed))
	waitDrops(t, h2, map[string]uint64{"spoofed_source": 1})

	count := func(subs ...string) int {
		n := 0
		for line := range strings.Lines(tr.Output()) {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				n++
			}
		}
		return n
	}
	want := []struct {
		n    int
		subs []string
	}{
		{3, []string{" in  h1 ", "icmp 10.244.1.0 > 10.244.2.0 84B delivered"}},
		{3, []string{" out h1 ", "icmp 10.244.2.0 > 10.244.1.0 84B sent"}},
		{1, []string{" in  h3 ", "udp 10.244.1.5:4000 > 10.244.2.0:7000", "dropped (spoofed_source)"}},
	}
	if err := testenv.Poll(t.Context(), waitTimeout, "trace lines", func() error {
		for _, w := range want {
			if got := count(w.subs...); got != w.n {
				return fmt.Errorf("%d lines with %q, want %d", got, w.subs, w.n)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("%v; the trace:\n%s", err, tr.Output())
	}
	if err := tr.Stop(syscall.SIGINT, waitTimeout); err != nil {
		t.Fatalf("weft trace did not stop cleanly on SIGINT: %v\n%s", err, tr.Output())
	}

	// The pcap holds the 7 inner packets: 6 ICMP echoes and the UDP one.
	f, err := os.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("pcap: %v", err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Fatalf("pcap link type %v, want raw IP", r.LinkType())
	}
	var icmp, udp int
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("pcap: %v", err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
		if p.Layer(layers.LayerTypeICMPv4) != nil {
			icmp++
		}
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && string(u.Payload) == "spoofed" {
			udp++
		}
	}
	if icmp != 6 || udp != 1 {
		t.Fatalf("pcap holds %d ICMP and %d spoofed UDP packets, want 6 and 1", icmp, udp)
	}
}

// A trace reader that never reads does not slow or stop forwarding: a bulk
// transfer completes while it is attached, and once it reads it learns how
// many events it lost.
func TestTraceSlowReader(t *testing.T) {
	_, nodes := weftLab(t, "ts", 2, "")
	h1, h2 := nodes[0], nodes[1]
	conn, err := net.Dial("unix", filepath.Join(h2.RunDir, api.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/trace HTTP/1.1\r\nHost: weft\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Poll(t.Context(), waitTimeout, "the trace reader attached", func() error {
		if s, err := h2.Status(t.Context()); err != nil || s.TraceReaders != 1 {
			return fmt.Errorf("trace readers: %v %v", s, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tcpTransfer(t, h1, h2, 64<<20)
	if _, err := h2.Status(t.Context()); err != nil {
		t.Fatalf("h2 after the transfer: %v", err)
	}

	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"lost":`) {
			t.Logf("the stalled reader learned: %s", sc.Text())
			return
		}
	}
	t.Fatalf("no lost-events notice on the stalled trace stream: %v", sc.Err())
}

// startTrace runs weft trace with args on w until the test ends, once it
// says it is attached.
func startTrace(t *testing.T, w *lab.Weft, args ...string) *lab.Proc {
	t.Helper()
	tr, err := w.Host.Start(context.Background(), weftBin, append([]string{"trace", "--run-dir", w.RunDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Stop(syscall.SIGKILL, time.Second) })
	if err := testenv.Poll(t.Context(), waitTimeout, "weft trace attached", func() error {
		if !strings.Contains(tr.Output(), "tracing;") {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, tr.Output())
	}
	return tr
}
