package encap

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/weftnet/weft/internal/packettest"
)

// steerTo runs SteerProgram for n sockets on dgram in x/net's BPF VM,
// which loads out of range as the kernel does (the program ends with 0).
func steerTo(t *testing.T, n int, dgram []byte) uint32 {
	t.Helper()
	vm, err := bpf.NewVM(SteerProgram(n))
	if err != nil {
		t.Fatalf("SteerProgram(%d) does not load: %v", n, err)
	}
	v, err := vm.Run(dgram)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

func plainDgram(t *testing.T, pkt []byte) []byte {
	t.Helper()
	p, _ := NewPlain(1)
	return seal(t, p, pkt)
}

func TestSteerSealedByQueue(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	for _, n := range []int{1, 3, 4, 8} {
		for _, q := range []int{0, 1, 2, 5, MaxQueues - 1} {
			d := sealQueuePkt(t, s, q, ipv4(40))
			if got := steerTo(t, n, d); got != uint32(q%n) {
				t.Errorf("%d sockets, queue %d: socket %d, want %d", n, q, got, q%n)
			}
		}
	}
}

// Plain GENEVE: one flow always picks one socket, its replies the same
// one, and different flows spread.
func TestSteerPlainByFlow(t *testing.T) {
	const n = 4
	a, b := netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("10.244.2.6")
	seen := map[uint32]bool{}
	for port := uint16(40000); port < 40128; port += 2 { // even, as the kernel picks for connect
		src, dst := netip.AddrPortFrom(a, port), netip.AddrPortFrom(b, 5201)
		out := steerTo(t, n, plainDgram(t, packettest.UDP4(src, dst, []byte("x"), true)))
		back := steerTo(t, n, plainDgram(t, packettest.UDP4(dst, src, []byte("reply"), true)))
		if out >= n || back != out {
			t.Fatalf("flow %v → %v: socket %d, its replies %d", src, dst, out, back)
		}
		seen[out] = true
	}
	if len(seen) != n {
		t.Errorf("64 flows used sockets %v of %d", seen, n)
	}
	// Other protocols and fragments go by addresses, in both directions.
	ping := steerTo(t, n, plainDgram(t, packettest.Echo4(8, a, b, 1, 1, []byte("p"))))
	pong := steerTo(t, n, plainDgram(t, packettest.Echo4(0, b, a, 1, 1, []byte("p"))))
	if ping >= n || ping != pong {
		t.Errorf("echo: socket %d, reply %d", ping, pong)
	}
	frag := packettest.UDP4(netip.AddrPortFrom(a, 1), netip.AddrPortFrom(b, 2), []byte("f"), false)
	frag[6] |= 0x20 // more fragments
	if got := steerTo(t, n, plainDgram(t, frag)); got != ping {
		t.Errorf("fragment: socket %d, want the address hash's %d", got, ping)
	}
	v6 := packettest.UDP6(netip.MustParseAddrPort("[fd00::1]:1"), netip.MustParseAddrPort("[fd00::2]:2"), []byte("6"))
	if got := steerTo(t, n, plainDgram(t, v6)); got >= n {
		t.Errorf("IPv6: socket %d", got)
	}
}

// Anything else falls back to the kernel's hash; what is too short to read
// goes to socket 0.
func TestSteerOthers(t *testing.T) {
	for name, d := range map[string][]byte{
		"not GENEVE":      []byte("GET / HTTP/1.1\r\n"),
		"plain, ethernet": {0, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 0, 0, 0},
	} {
		if got := steerTo(t, 4, d); got != steerFallback {
			t.Errorf("%s: %d, want the fallback", name, got)
		}
	}
	if got := steerTo(t, 4, []byte{6}); got != 0 {
		t.Errorf("a sealed first byte alone: %d, want 0", got)
	}
}
