package udp

// Send path: pack turns the caller's datagrams into sendmmsg messages, one
// iovec per datagram so nothing is copied. With GSO, a run of consecutive
// datagrams to one endpoint becomes one message carrying a UDP_SEGMENT control
// message: the kernel (or NIC) cuts it back into datagrams of that size. The
// messages go out through x/net WriteBatch, looping over partial sends.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

const (
	// maxGSOSegments is the kernel's UDP_MAX_SEGMENTS.
	maxGSOSegments = 64
	// maxGSOBytes keeps a GSO message's payload under the 65,507-byte UDP
	// limit with room for the headers of either IP version.
	maxGSOBytes = 65000
)

var (
	errShortEndpoints = errors.New("udp: write: fewer endpoints than buffers")
	errBadEndpoint    = errors.New("destination is not a valid address and port for this socket's family")
)

type writer struct {
	msgs  []ipv4.Message
	iovs  [][]byte      // one per datagram, sliced into msgs[i].Buffers
	addrs []net.UDPAddr // msgs[i].Addr is &addrs[i] for good
	ips   [][16]byte    // backing for addrs[i].IP, so setting it allocates nothing
	oob   [][]byte      // UDP_SEGMENT control message per message, header prebuilt
	first []int         // index in the caller's bufs of each message's first datagram
	count []int         // datagrams in each message

	checked int // this Write's datagrams before this index had their endpoint checked
}

func (w *writer) init(batch int) {
	w.msgs = make([]ipv4.Message, batch)
	w.iovs = make([][]byte, batch)
	w.addrs = make([]net.UDPAddr, batch)
	w.ips = make([][16]byte, batch)
	w.oob = make([][]byte, batch)
	w.first = make([]int, batch)
	w.count = make([]int, batch)
	space := unix.CmsgSpace(2)
	oob := make([]byte, batch*space)
	for i := range w.msgs {
		w.msgs[i].Addr = &w.addrs[i]
		b := oob[i*space : (i+1)*space : (i+1)*space]
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level = unix.SOL_UDP
		h.Type = unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
		w.oob[i] = b
	}
}

// Write sends each bufs[i], a whole datagram payload, to eps[i]. Runs of
// consecutive datagrams to one endpoint go out as one GSO message when GSO is
// on (equal sizes but a shorter last one, at most 64 datagrams and 65,000
// bytes). If the kernel rejects GSO, Write turns it off for good (see
// Offloads) and resends without it. Per-datagram failures do not stop the
// batch: the rest is sent and the first failure returned. Write allocates
// nothing unless it fails. It must not run concurrently with itself; it may
// run concurrently with Read. After Close it returns net.ErrClosed.
func (c *Conn) Write(bufs [][]byte, eps []netip.AddrPort) error {
	if len(eps) < len(bufs) {
		return errShortEndpoints
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	w := &c.wr
	w.checked = 0
	var errs sendErrors
	for start := 0; start < len(bufs); {
		gso := c.gso.Load()
		nmsg, end := c.pack(bufs, eps, start, gso, &errs)
		for sent := 0; sent < nmsg; {
			k, err := c.bc.WriteBatch(w.msgs[sent:nmsg], 0)
			c.stats.writeCalls.Add(1)
			if k > 0 { // x/net reports -1 on error
				d := 0
				for _, n := range w.count[sent : sent+k] {
					d += n
				}
				c.stats.writeMessages.Add(uint64(k))
				c.stats.writeDatagrams.Add(uint64(d))
				sent += k
			}
			if err == nil && k <= 0 { // never seen; keeps the loop bounded
				err = io.ErrShortWrite
			}
			if err == nil {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return net.ErrClosed
			}
			if gso && w.msgs[sent].OOB != nil && gsoRejected(err) {
				c.disableGSO(err)
				end = w.first[sent] // resend from this message on, without GSO
				break
			}
			errs.add(&c.stats.writeErrors, eps[w.first[sent]], w.count[sent], err)
			sent++
		}
		start = end
	}
	if errs.first != nil {
		return fmt.Errorf("udp: write: %d of %d datagrams not sent, first %w", errs.failed, len(bufs), errs.first)
	}
	return nil
}

// sendErrors collects a batch's failures: a count and the first error.
type sendErrors struct {
	failed int
	first  error
}

func (e *sendErrors) add(counter *atomic.Uint64, ep netip.AddrPort, n int, err error) {
	e.failed += n
	counter.Add(uint64(n))
	if e.first == nil {
		e.first = fmt.Errorf("to %v: %w", ep, err)
	}
}

// pack fills w.msgs from bufs[start:] until the datagrams run out or the
// iovecs are used up, and returns the message count and the index of the
// first datagram not packed. Datagrams to endpoints the socket cannot reach
// are skipped and reported in errs, once even when a GSO fallback repacks them.
func (c *Conn) pack(bufs [][]byte, eps []netip.AddrPort, start int, gso bool, errs *sendErrors) (nmsg, end int) {
	w := &c.wr
	m, iv, iv0 := -1, 0, 0
	seg, total := 0, 0
	closed := true // the current message takes no more segments
	i := start
	for ; i < len(bufs) && iv < len(w.iovs); i++ {
		b, ep := bufs[i], eps[i]
		if !c.validEndpoint(ep) {
			if i >= w.checked {
				errs.add(&c.stats.writeErrors, ep, 1, errBadEndpoint)
			}
			continue
		}
		if gso && !closed && ep == eps[w.first[m]] && len(b) > 0 && len(b) <= seg &&
			w.count[m] < maxGSOSegments && total+len(b) <= maxGSOBytes {
			w.iovs[iv] = b
			iv++
			w.count[m]++
			total += len(b)
			closed = len(b) < seg // a shorter segment ends the run
			continue
		}
		if m >= 0 {
			w.finish(m, iv0, iv, seg)
		}
		m++
		c.setAddr(m, ep)
		w.first[m], w.count[m] = i, 1
		iv0 = iv
		w.iovs[iv] = b
		iv++
		seg, total, closed = len(b), len(b), len(b) == 0
	}
	if m >= 0 {
		w.finish(m, iv0, iv, seg)
	}
	w.checked = max(w.checked, i)
	return m + 1, i
}

// finish points message m at its iovecs and, for a run, sets its segment size.
func (w *writer) finish(m, iv0, iv, seg int) {
	w.msgs[m].Buffers = w.iovs[iv0:iv:iv]
	if w.count[m] == 1 {
		w.msgs[m].OOB = nil
		return
	}
	b := w.oob[m]
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(seg))
	w.msgs[m].OOB = b
}

// setAddr writes ep into message m's preallocated *net.UDPAddr.
func (c *Conn) setAddr(m int, ep netip.AddrPort) {
	w := &c.wr
	a := &w.addrs[m]
	ip := ep.Addr()
	if c.v6 {
		w.ips[m] = ip.As16()
		a.IP, a.Zone = w.ips[m][:], ip.Zone()
	} else {
		v4 := ip.Unmap().As4()
		copy(w.ips[m][:4], v4[:])
		a.IP, a.Zone = w.ips[m][:4], ""
	}
	a.Port = int(ep.Port())
}

// validEndpoint rejects what the kernel would answer with EINVAL (port 0, the
// wrong family), which would otherwise look like a GSO rejection. An IPv6
// socket is IPv6-only, so IPv4 (also mapped) destinations are refused.
func (c *Conn) validEndpoint(ep netip.AddrPort) bool {
	if ep.Port() == 0 || !ep.Addr().IsValid() {
		return false
	}
	if c.v6 {
		return ep.Addr().Is6() && !ep.Addr().Is4In6()
	}
	return ep.Addr().Unmap().Is4()
}

// gsoRejected reports a send error that means this socket or route cannot do
// UDP GSO: EIO when the device lacks checksum offload, EINVAL when the
// segment is too big for the route or checksums are off, EOPNOTSUPP or
// ENOPROTOOPT on kernels or stacks without UDP_SEGMENT.
func gsoRejected(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOPROTOOPT)
}
