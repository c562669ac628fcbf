package tunnel_test

// Tests against real TUN devices, for both drivers, inside the private
// network namespace TestMain set up. The kernel side uses ordinary sockets:
// traffic to 10.99.0.0/16 is routed into the TUN, and packets we Write to the
// TUN's own address are delivered to a socket bound to it.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/tunnel"
)

// patience bounds every wait; only a hang or a lost packet reaches it.
const patience = 10 * time.Second

var (
	tunAddr   = netip.MustParsePrefix("10.99.1.0/32")
	overlay   = netip.MustParsePrefix("10.99.0.0/16")
	remoteDst = netip.MustParseAddrPort("10.99.2.5:9999") // routed into the TUN
	remoteSrc = netip.MustParseAddrPort("10.99.3.7:5555") // a peer's address, as Write's source
)

func deviceConfig(driver string) tunnel.Config {
	return tunnel.Config{
		Name:    "wt-" + driver,
		Driver:  driver,
		MTU:     1400,
		Address: tunAddr,
		Routes:  []netip.Prefix{overlay},
	}
}

// forEachDriver runs f as a subtest per driver, after testenv.Require.
func forEachDriver(t *testing.T, f func(t *testing.T, driver string)) {
	t.Helper()
	testenv.Require(t)
	for _, driver := range tunnel.Drivers {
		t.Run(driver, func(t *testing.T) { f(t, driver) })
	}
}

// openDevice opens cfg and closes it when the test ends, pass or fail.
func openDevice(t *testing.T, cfg tunnel.Config) tunnel.Device {
	t.Helper()
	dev, err := tunnel.Open(cfg, nil)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := dev.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return dev
}

func linkGone(name string) bool {
	_, err := netlink.LinkByName(name)
	return errors.As(err, &netlink.LinkNotFoundError{})
}

type readPacket struct {
	pkt   []byte
	batch int // packets the Read that returned it returned in all
}

// reader reads dev in a goroutine, as a node's inside loop does, and hands
// copies of the packets to the test. Cleanup closes dev and waits for it.
type reader struct {
	pkts chan readPacket
	done chan struct{}
	err  error // why Read stopped; set before done is closed
}

func startReader(t *testing.T, dev tunnel.Device, offset int) *reader {
	r := &reader{pkts: make(chan readPacket, 256), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		bufs := make([][]byte, dev.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, offset+65535)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := dev.Read(bufs, sizes, offset)
			if err != nil {
				r.err = err
				return
			}
			for i := range n {
				select {
				case r.pkts <- readPacket{bytes.Clone(bufs[i][offset : offset+sizes[i]]), n}:
				default: // the test stopped listening
				}
			}
		}
	}()
	t.Cleanup(func() {
		dev.Close()
		select {
		case <-r.done:
		case <-time.After(patience):
			t.Error("reader still in Read after Close")
		}
	})
	return r
}

// next returns the next UDP packet to dst, skipping others (the kernel also
// sends IPv6 router solicitations and MLD reports into a new link).
func (r *reader) next(t *testing.T, dst netip.AddrPort) (packettest.UDP, readPacket) {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case p := <-r.pkts:
			if u, ok := packettest.ParseUDP4(p.pkt); ok && u.Dst == dst {
				return u, p
			}
		case <-r.done:
			t.Fatalf("Read failed: %v", r.err)
		case <-timeout:
			t.Fatalf("no packet to %s read from the TUN", dst)
		}
	}
}

func TestOpenConfiguresLink(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		v6 := deviceConfig(driver)
		v6.Address = netip.MustParsePrefix("fd99::1/128")
		v6.Routes = []netip.Prefix{netip.MustParsePrefix("fd99::/48"), overlay}
		for _, cfg := range []tunnel.Config{deviceConfig(driver), v6} {
			t.Run(cfg.Address.String(), func(t *testing.T) {
				dev := openDevice(t, cfg)
				checkDevice(t, dev, cfg)
				checkLink(t, cfg)
			})
		}
	})
}

func checkDevice(t *testing.T, dev tunnel.Device, cfg tunnel.Config) {
	t.Helper()
	if dev.Name() != cfg.Name || dev.MTU() != cfg.MTU {
		t.Errorf("Name, MTU = %q, %d; want %q, %d", dev.Name(), dev.MTU(), cfg.Name, cfg.MTU)
	}
	off := dev.Offloads()
	switch cfg.Driver {
	case tunnel.DriverWireguard:
		if dev.BatchSize() < 2 || !off.TSO || !off.GRO || off.Reason != "" {
			t.Errorf("wireguard: BatchSize %d, Offloads %+v; want a batch and TSO/GRO on", dev.BatchSize(), off)
		}
	case tunnel.DriverWater:
		if dev.BatchSize() != 1 || off.TSO || off.GRO || off.Reason == "" {
			t.Errorf("water: BatchSize %d, Offloads %+v; want 1, no offloads and a reason", dev.BatchSize(), off)
		}
	}
}

// checkLink asserts what netlink shows: up, MTU, address, routes.
func checkLink(t *testing.T, cfg tunnel.Config) {
	t.Helper()
	link, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		t.Fatalf("LinkByName(%q): %v", cfg.Name, err)
	}
	attrs := link.Attrs()
	if attrs.Flags&net.FlagUp == 0 {
		t.Errorf("link %s is not up (flags %v)", cfg.Name, attrs.Flags)
	}
	if attrs.MTU != cfg.MTU {
		t.Errorf("link MTU %d, want %d", attrs.MTU, cfg.MTU)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == cfg.Address.String() }) {
		t.Errorf("address %s not on %s; have %v", cfg.Address, cfg.Name, addrs)
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range cfg.Routes {
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			// IPv6 routes carry no scope; IPv4 ones must be scope link.
			return r.Dst != nil && r.Dst.String() == want.String() &&
				(want.Addr().Is6() || r.Scope == netlink.SCOPE_LINK)
		}) {
			t.Errorf("route %s (scope link) not via %s; have %v", want, cfg.Name, routes)
		}
	}
}

func TestKernelPacketReachesRead(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		const offset = 16 // Read must honour any offset
		dev := openDevice(t, deviceConfig(driver))
		r := startReader(t, dev, offset)

		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(remoteDst))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		payload := []byte("hello through " + driver)
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
		u, _ := r.next(t, remoteDst)
		if u.Src.Addr() != tunAddr.Addr() || !bytes.Equal(u.Payload, payload) {
			t.Errorf("read %s -> %s %q; want from %s with %q", u.Src, u.Dst, u.Payload, tunAddr.Addr(), payload)
		}
	})
}

// TestSuperpacketIsSplit sends one UDP GSO superpacket. With the wireguard
// driver the kernel hands it to the TUN whole (USO) and the library splits it
// in Go; with water the kernel segments it. Either way Read must return each
// datagram with valid checksums.
func TestSuperpacketIsSplit(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		const segment, segments = 500, 3
		dev := openDevice(t, deviceConfig(driver))
		r := startReader(t, dev, 0)

		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(remoteDst))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		rc, err := conn.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, segment)
		}); err != nil || serr != nil {
			t.Fatalf("set UDP_SEGMENT: %v %v", err, serr)
		}
		payload := make([]byte, segment*segments)
		for i := range payload {
			payload[i] = byte(i / segment)
		}
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
		var batches []int
		for i := range segments {
			u, p := r.next(t, remoteDst)
			batches = append(batches, p.batch)
			if !bytes.Equal(u.Payload, payload[i*segment:(i+1)*segment]) {
				t.Fatalf("segment %d: got %d bytes starting %v", i, len(u.Payload), u.Payload[:min(4, len(u.Payload))])
			}
		}
		t.Logf("segments came from Reads returning %v packets", batches)
		if driver == tunnel.DriverWireguard && batches[0] != segments {
			t.Errorf("wireguard: first Read returned %d packets, want the %d split from one superpacket", batches[0], segments)
		}
	})
}

// TestQueuedPacketsComeInOneRead queues small packets before anyone reads:
// the wireguard driver must hand them all out in one Read (so they leave in
// one send), where its library returns one per read().
func TestQueuedPacketsComeInOneRead(t *testing.T) {
	testenv.Require(t)
	const queued = 20
	dev := openDevice(t, deviceConfig(tunnel.DriverWireguard))
	if dev.BatchSize() < 2*queued {
		t.Fatalf("BatchSize %d, want room for two library batches", dev.BatchSize())
	}
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(remoteDst))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for i := range queued {
		if _, err := conn.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r := startReader(t, dev, 0)
	for i := range queued {
		u, p := r.next(t, remoteDst)
		if len(u.Payload) != 1 || u.Payload[0] != byte(i) {
			t.Fatalf("packet %d: payload %v, want [%d] (order kept)", i, u.Payload, i)
		}
		if p.batch < queued { // more when the kernel queued its own (IPv6 MLD) too
			t.Fatalf("packet %d came from a Read returning %d packets, want all %d queued", i, p.batch, queued)
		}
	}
}

// TestReadAllocatesPerBurstNotPerPacket: the inside loop reads every packet
// through Read. The one allocation allowed is the library's error value for
// the read that finds the queue empty, once per burst, whatever its length.
func TestReadAllocatesPerBurstNotPerPacket(t *testing.T) {
	testenv.Require(t)
	dev := openDevice(t, deviceConfig(tunnel.DriverWireguard))
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(remoteDst))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	bufs := make([][]byte, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, 65535)
	}
	sizes := make([]int, len(bufs))
	payload := []byte("x")
	for _, burst := range []int{1, 30} {
		read := 0
		allocs := testing.AllocsPerRun(200, func() {
			for range burst {
				conn.Write(payload)
			}
			for got := 0; got < burst; {
				n, err := dev.Read(bufs, sizes, 0)
				if err != nil {
					t.Fatal(err)
				}
				got += n
				read += n
			}
		})
		if read == 0 || allocs > 1 {
			t.Errorf("bursts of %d packets: %v allocations per burst (%d packets read), want at most 1", burst, allocs, read)
		}
	}
}

func TestWrittenPacketReachesKernel(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		dev := openDevice(t, deviceConfig(driver))
		dst := netip.AddrPortFrom(tunAddr.Addr(), 7777)
		ln, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })

		for _, offset := range []int{tunnel.WriteOffset, tunnel.WriteOffset + 22} {
			// Three same-size datagrams of one flow: the wireguard driver
			// coalesces them (UDP GRO) into one write, the kernel splits it.
			var bufs [][]byte
			var want []string
			for i := range 3 {
				payload := fmt.Sprintf("%s offset %d packet %d %s", driver, offset, i, strings.Repeat("x", 40))
				// DF and valid checksums: the kernel and the offload code take
				// the packets as they are.
				pkt := packettest.WithUDPChecksum(packettest.UDP4(remoteSrc, dst, []byte(payload), true))
				buf := make([]byte, offset+len(pkt), offset+65535) // room to coalesce
				copy(buf[offset:], pkt)
				bufs = append(bufs, buf)
				want = append(want, payload)
			}
			if err := dev.Write(bufs, offset); err != nil {
				t.Fatalf("offset %d: Write: %v", offset, err)
			}
			for _, w := range want {
				ln.SetReadDeadline(time.Now().Add(patience))
				buf := make([]byte, 2048)
				n, from, err := ln.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("offset %d: waiting for %q: %v", offset, w, err)
				}
				if from != remoteSrc || string(buf[:n]) != w {
					t.Errorf("offset %d: got %q from %s, want %q from %s", offset, buf[:n], from, w, remoteSrc)
				}
			}
		}
		if err := dev.Write([][]byte{make([]byte, 40)}, tunnel.WriteOffset-1); err == nil {
			t.Error("Write with offset < WriteOffset succeeded")
		}
	})
}

func TestOpenExistingName(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		cfg := deviceConfig(driver)
		openDevice(t, cfg)
		for _, name := range []string{cfg.Name, "lo"} { // a TUN of ours, any other link
			again := cfg
			again.Name = name
			dev, err := tunnel.Open(again, nil)
			if err == nil {
				dev.Close()
				t.Fatalf("second Open(%q) succeeded", name)
			}
			if !errors.Is(err, tunnel.ErrExists) || !strings.Contains(err.Error(), fmt.Sprintf("%q already exists", name)) {
				t.Errorf("second Open(%q) = %v, want ErrExists naming it", name, err)
			}
		}
		checkLink(t, cfg) // the first device is untouched
	})
}

func TestOpenBadConfigLeavesNothing(t *testing.T) {
	testenv.Require(t)
	before, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range badConfigs {
		cfg := validConfig()
		cfg.Name = "wt-bad"
		tc.modify(&cfg)
		dev, err := tunnel.Open(cfg, nil)
		if err == nil {
			dev.Close()
			t.Errorf("%s: Open succeeded", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	after, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("links before %d, after %d: a failed Open left one behind", len(before), len(after))
	}
}

// TestOpenUndoesOnFailure makes the last step fail (a route that exists)
// and checks that Open removed the link it had created.
func TestOpenUndoesOnFailure(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		taken := netip.MustParsePrefix("10.98.0.0/16")
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		route := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: ipNet(taken), Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteAdd(route); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netlink.RouteDel(route) })

		cfg := deviceConfig(driver)
		cfg.Routes = append(cfg.Routes, taken)
		dev, err := tunnel.Open(cfg, nil)
		if err == nil {
			dev.Close()
			t.Fatal("Open with a taken route succeeded")
		}
		if !errors.Is(err, tunnel.ErrRouteExists) || !strings.Contains(err.Error(), "a route to 10.98.0.0/16 already exists") {
			t.Errorf("Open = %v, want ErrRouteExists naming the route", err)
		}
		testenv.WaitFor(t, patience, "the half-configured link is gone", func() bool { return linkGone(cfg.Name) })
	})
}

func TestCloseUnblocksReadAndRemovesLink(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		cfg := deviceConfig(driver)
		dev, err := tunnel.Open(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() }) // in case the test fails early
		r := startReader(t, dev, 0)

		// A packet read proves the reader is looping; it is back in Read
		// (or about to be) when Close comes.
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(remoteDst))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		r.next(t, remoteDst)

		if err := dev.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-r.done:
			if !errors.Is(r.err, tunnel.ErrClosed) {
				t.Errorf("pending Read returned %v, want ErrClosed", r.err)
			}
		case <-time.After(patience):
			t.Fatal("Read still blocked after Close")
		}
		testenv.WaitFor(t, patience, "the link is gone", func() bool { return linkGone(cfg.Name) })

		pkt := packettest.WithUDPChecksum(packettest.UDP4(remoteSrc, netip.AddrPortFrom(tunAddr.Addr(), 7777), []byte("late"), true))
		if err := dev.Write([][]byte{append(make([]byte, tunnel.WriteOffset), pkt...)}, tunnel.WriteOffset); !errors.Is(err, tunnel.ErrClosed) {
			t.Errorf("Write after Close = %v, want ErrClosed", err)
		}
		if err := dev.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// TestQueues opens a device with several queues and sends many UDP flows
// into it: every packet is read exactly once, each flow from one queue only
// (the kernel's queue choice is per flow, which keeps flows in order), and
// with 64 flows every queue gets some (all 64 hashing to fewer than 3 queues
// has a chance of about 3·(2/3)^64, 2e-11). A packet written on any queue
// reaches the kernel, and the link goes only with its last queue.
func TestQueues(t *testing.T) {
	testenv.Require(t)
	const queues, flows = 3, 64
	cfg := deviceConfig(tunnel.DriverWireguard)
	cfg.Name = "wt-queues"
	cfg.Queues = queues
	devs, err := tunnel.OpenQueues(cfg, nil)
	if err != nil {
		t.Fatalf("OpenQueues: %v", err)
	}
	if len(devs) != queues {
		for _, d := range devs {
			d.Close()
		}
		t.Fatalf("OpenQueues gave %d devices, want %d", len(devs), queues)
	}
	readers := make([]*reader, queues)
	for i, d := range devs {
		checkDevice(t, d, cfg)
		readers[i] = startReader(t, d, 0) // its cleanup closes d
	}
	checkLink(t, cfg)

	// One socket per flow: each has its own source port.
	for i := range flows {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(remoteDst))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for range 3 {
			if _, err := conn.Write([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	type queued struct {
		q   int
		pkt []byte
	}
	all := make(chan queued)
	stop := make(chan struct{})
	defer close(stop)
	for q, r := range readers {
		go func() {
			for {
				select {
				case p := <-r.pkts:
					select {
					case all <- queued{q, p.pkt}:
					case <-stop:
						return
					}
				case <-stop:
					return
				}
			}
		}()
	}
	queueOf := map[uint16]int{} // source port → the queue its packets came from
	perQueue := make([]int, queues)
	timeout := time.After(patience)
	for got := 0; got < 3*flows; {
		var p queued
		select {
		case p = <-all:
		case <-timeout:
			t.Fatalf("read %d of %d packets", got, 3*flows)
		}
		u, ok := packettest.ParseUDP4(p.pkt)
		if !ok || u.Dst != remoteDst {
			continue // router solicitations and the like
		}
		got++
		perQueue[p.q]++
		if prev, seen := queueOf[u.Src.Port()]; seen && prev != p.q {
			t.Errorf("flow from port %d read from queues %d and %d", u.Src.Port(), prev, p.q)
		}
		queueOf[u.Src.Port()] = p.q
	}
	if len(queueOf) != flows {
		t.Errorf("packets of %d flows read, want %d", len(queueOf), flows)
	}
	for q, n := range perQueue {
		if n == 0 {
			t.Errorf("queue %d read nothing (per queue: %v)", q, perQueue)
		}
	}

	// Writing into the last queue reaches a kernel socket.
	sock, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunAddr.Addr(), 7777)))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	pkt := packettest.WithUDPChecksum(packettest.UDP4(remoteSrc, netip.AddrPortFrom(tunAddr.Addr(), 7777), []byte("via the last queue"), true))
	buf := append(make([]byte, tunnel.WriteOffset), pkt...)
	if err := devs[queues-1].Write([][]byte{buf}, tunnel.WriteOffset); err != nil {
		t.Fatalf("Write on queue %d: %v", queues-1, err)
	}
	sock.SetReadDeadline(time.Now().Add(patience))
	b := make([]byte, 100)
	if n, _, err := sock.ReadFromUDPAddrPort(b); err != nil || string(b[:n]) != "via the last queue" {
		t.Errorf("socket read %q, %v", b[:n], err)
	}

	devs[0].Close()
	if linkGone(cfg.Name) {
		t.Errorf("closing queue 0 removed the link; %d queues are still open", queues-1)
	}
	for _, d := range devs[1:] {
		d.Close()
	}
	testenv.WaitFor(t, patience, "link "+cfg.Name+" gone after every queue closed", func() bool { return linkGone(cfg.Name) })
}
