package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// TestFlood sends a bounded flood of 10^6 random and mutated datagrams at a
// sealed node's data port, from a peer's endpoint (so they reach the crypto)
// and from a stranger's: the node stays up, its memory stays bounded,
// nothing reaches its TUN, and the drops are counted by reason.
func TestFlood(t *testing.T) {
	requireTools(t, "ping")
	_, nodes := weftLab(t, "fl", 2, "")
	h1, h2 := nodes[0], nodes[1]
	ping(t, h2, h1, 1)
	if err := h2.Stop(); err != nil { // h2's endpoint becomes ours to send from
		t.Fatal(err)
	}
	before := status(t, h1)
	rssBefore := rssKiB(t, h1.Proc.Pid())

	peerSock := listenUDP(t, h2.Host, netip.AddrPortFrom(h2.Host.Addr, encap.Port))
	stranger := listenUDP(t, h2.Host, netip.AddrPortFrom(h2.Host.Addr, encap.Port+7))
	to := netip.AddrPortFrom(h1.Host.Addr, encap.Port)
	rng := rand.New(rand.NewPCG(1, 2))
	// A template that looks sealed: valid header and option, random rest.
	tmpl := make([]byte, 200)
	tmpl[0], tmpl[1], tmpl[2], tmpl[3] = 6, 0x40, 0x88, 0xB5
	tmpl[6] = 1 // VNI 1
	tmpl[8], tmpl[9], tmpl[10], tmpl[11] = 0xFF, 0x57, 0x81, 5
	tmpl[12], tmpl[13] = encap.CipherAESGCM, clusterKeyID(t, h1) // so forgeries reach the AEAD
	const total = 1_000_000
	buf := make([]byte, 1500)
	for i := range total {
		var d []byte
		switch i % 4 {
		case 0: // random bytes, random length
			d = buf[:rng.IntN(len(buf))]
			for j := range d {
				d[j] = byte(rng.Uint32())
			}
		default: // a sealed-looking datagram with a few bytes mutated
			d = buf[:len(tmpl)]
			copy(d, tmpl)
			// A new forged session each time: each would cost the node a
			// key derivation and its garbage, were derivations not
			// rate-limited per peer.
			binary.BigEndian.PutUint64(d[16:24], 1<<62+rng.Uint64()>>2)
			for j := 24; j < len(d); j++ { // counter, ciphertext, tag
				d[j] = byte(rng.Uint32())
			}
			for range rng.IntN(4) {
				d[rng.IntN(len(d))] = byte(rng.Uint32())
			}
		}
		from := peerSock
		if i%8 == 7 {
			from = stranger
		}
		from.WriteToUDPAddrPort(d, to) // losses to a full receive buffer are fine
	}

	// The node is up and answers; nothing was delivered; drops were counted.
	after := status(t, h1)
	if got, was := peer(t, after, "h2").RxPackets, peer(t, before, "h2").RxPackets; got != was {
		t.Fatalf("the flood delivered %d packets into the TUN", got-was)
	}
	var counted uint64
	for reason, n := range after.Drops {
		counted += n - before.Drops[reason]
	}
	if counted == 0 || counted > total {
		t.Fatalf("%d drops counted for %d datagrams sent: %v", counted, total, after.Drops)
	}
	// Forged new sessions were refused before any key derivation, except
	// the few the rate limit lets through (each then fails to
	// authenticate); unlimited, about half the flood would be auth_failed.
	if n := after.Drops["session_limit"] - before.Drops["session_limit"]; n == 0 {
		t.Fatalf("no session_limit drops: %v", after.Drops)
	}
	if n := after.Drops["auth_failed"] - before.Drops["auth_failed"]; n > 2000 {
		t.Fatalf("%d forgeries reached the AEAD: session keys were derived without a limit", n)
	}
	t.Logf("%d of %d datagrams reached weft and were dropped (the rest the kernel dropped on a full socket buffer): %v", counted, total, after.Drops)
	if grew := rssKiB(t, h1.Proc.Pid()) - rssBefore; grew > 20*1024 {
		t.Fatalf("weft's RSS grew by %d KiB under the flood", grew)
	}
	h2.Proc = nil // stopped above; the cleanup must not stop it again
	if err := testenv.Poll(t.Context(), waitTimeout, "h1 answering after the flood", func() error {
		_, err := h1.Status(t.Context())
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// clusterKeyID is the id of the key w was started with.
func clusterKeyID(t *testing.T, w *lab.Weft) byte {
	t.Helper()
	for i, a := range w.Args[:len(w.Args)-1] {
		if a == "--key-file" {
			b, err := os.ReadFile(w.Args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			key, err := encap.ParseKey(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return encap.KeyID(key)
		}
	}
	t.Fatal("node has no --key-file")
	return 0
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
