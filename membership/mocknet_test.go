package membership

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// mockNet runs many real memberlists in one process over memberlist's
// MockNetwork, with what a thousand members need on top:
//
//   - MockTransport delivers on unbuffered channels, in the receiver's packet
//     loop: two members that ack each other's pings at once would each wait
//     for the other forever. So a pump per member drains its MockTransport
//     into a buffered inbox at once and drops what does not fit, as a full
//     UDP socket does.
//   - A member that has shut down drops packets, and dialing it fails, as a
//     closed port refuses: with MockTransport a stream to it would wait
//     forever for an accept (a rejoin to a stopped seed hung the teardown).
//   - It counts the bytes members send: packets and both ends of streams.
//
// MockNetwork is not safe for concurrent use: every transport is made by
// newMockNet, before any memberlist starts. The pumps run until the process
// ends, so that nothing sending to a stopped member ever blocks.
type mockNet struct {
	mn      memberlist.MockNetwork
	byName  map[string]*mockTransport
	byAddr  map[string]*mockTransport
	sent    atomic.Uint64 // bytes
	dropped atomic.Uint64 // packets that found a full inbox
}

// mockInbox is how many packets wait for a member's packet loop: over a
// second of its gossip in a thousand-member cluster.
const mockInbox = 1024

func newMockNet(names []string) *mockNet {
	n := &mockNet{byName: make(map[string]*mockTransport, len(names)), byAddr: make(map[string]*mockTransport, len(names))}
	for _, name := range names {
		t := &mockTransport{MockTransport: n.mn.NewTransport(name), net: n, down: make(chan struct{}),
			packets: make(chan *memberlist.Packet, mockInbox), streams: make(chan net.Conn, 64)}
		ip, port, _ := t.FinalAdvertiseAddr("", 0)
		n.byName[name] = t
		n.byAddr[net.JoinHostPort(ip.String(), strconv.Itoa(port))] = t
		go t.pump()
	}
	return n
}

// transport is the member name's, for memberlist.Config.Transport.
func (n *mockNet) transport(name string) *mockTransport { return n.byName[name] }

// mockTransport is one member's MockTransport behind a buffered inbox.
type mockTransport struct {
	*memberlist.MockTransport
	net      *mockNet
	packets  chan *memberlist.Packet
	streams  chan net.Conn
	down     chan struct{} // closed by Shutdown
	downOnce sync.Once
}

var _ memberlist.NodeAwareTransport = (*mockTransport)(nil)

// pump moves what MockTransport delivers into the inbox without waiting;
// once the member is down it drops everything.
func (t *mockTransport) pump() {
	down, gone := t.down, false
	for {
		select {
		case p := <-t.MockTransport.PacketCh():
			if gone {
				continue
			}
			select {
			case t.packets <- p:
			default:
				t.net.dropped.Add(1)
			}
		case c := <-t.MockTransport.StreamCh():
			if gone {
				c.Close()
				continue
			}
			select {
			case t.streams <- countingConn{c, &t.net.sent}:
			default:
				c.Close() // the dialer's stream fails, as a refused connection
			}
		case <-down:
			down, gone = nil, true
			for len(t.streams) > 0 { // accepted by nobody now
				(<-t.streams).Close()
			}
		}
	}
}

func (t *mockTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *mockTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *mockTransport) Shutdown() error {
	t.downOnce.Do(func() { close(t.down) })
	return nil
}

func (t *mockTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *mockTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.net.sent.Add(uint64(len(b)))
	// A socket copies what it sends; MockTransport hands b itself over, and
	// memberlist sends one buffer to several members.
	return t.MockTransport.WriteToAddress(bytes.Clone(b), a)
}

func (t *mockTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *mockTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dest := t.net.byAddr[a.Addr]
	if a.Name != "" {
		dest = t.net.byName[a.Name]
	}
	if dest != nil {
		select {
		case <-dest.down:
			return nil, fmt.Errorf("dial %s: connection refused", a.Addr)
		default:
		}
	}
	c, err := t.MockTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{c, &t.net.sent}, nil
}

// countingConn adds what is written on it to sent.
type countingConn struct {
	net.Conn
	sent *atomic.Uint64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(uint64(n))
	return n, err
}
