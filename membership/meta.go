package membership

// Node metadata: what each node announces about itself in memberlist's alive
// messages (at most memberlist.MetaMaxSize = 512 bytes).
//
// Layout, version 1 (all integers big-endian):
//
//	version   u8      1; a decoder accepts any version ≥ 1
//	flags     u32     capability and state bits (flagLeaving)
//	name      str     u8 length + bytes; must equal the memberlist node name
//	network   prefix  the overlay network the node belongs to
//	subnet    prefix  its leased subnet; an empty address while it has none
//	claim     u64     the claim order (Lease.Seq) of that subnet
//	endpoint  addr + u16 port  underlay data endpoint
//	address   addr    overlay address (the subnet's network address)
//
// Version 2 appends:
//
//	ttl       u64     the lease TTL in force at the node, in milliseconds
//	                  (LeaseTTL, as adopted from the cluster)
//
// Version 3 appends (a dual-stack node; both empty on an IPv4-only one):
//
//	network6  prefix  the IPv6 overlay network
//	subnet6   prefix  its IPv6 subnet, derived from subnet (subnetenv.Subnet6);
//	                  empty while it has no subnet
//
// addr is a u8 length (0, 4 or 16) and the address bytes; prefix is an addr
// followed, when the length is not 0, by a u8 prefix length. Later versions
// only append fields, so an older decoder reads the v1 fields and ignores the
// rest.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

const metaVersion = 3

// Flag and capability bits of the metadata word. Unknown bits are ignored.
const (
	flagLeaving uint32 = 1 << 0 // leaving gracefully: the coming "dead" is a "left"
)

type meta struct {
	Version  uint8
	Flags    uint32
	Name     string
	Network  netip.Prefix
	Subnet   netip.Prefix // zero while the node has no lease yet
	Seq      uint64       // claim order of Subnet: the lower (Seq, Name) keeps a contested subnet
	Endpoint netip.AddrPort
	Address  netip.Addr    // zero with Subnet
	LeaseTTL time.Duration // v2; zero from a v1 node
	Network6 netip.Prefix  // v3; zero from an older or IPv4-only node
	Subnet6  netip.Prefix  // v3; zero with Subnet, and on an IPv4-only node
}

func (m meta) encode() []byte {
	b := make([]byte, 0, 64+len(m.Name))
	b = append(b, metaVersion)
	b = binary.BigEndian.AppendUint32(b, m.Flags)
	b = append(b, byte(len(m.Name)))
	b = append(b, m.Name...)
	b = appendPrefix(b, m.Network)
	b = appendPrefix(b, m.Subnet)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = appendAddr(b, m.Endpoint.Addr())
	b = binary.BigEndian.AppendUint16(b, m.Endpoint.Port())
	b = appendAddr(b, m.Address)
	b = binary.BigEndian.AppendUint64(b, uint64(m.LeaseTTL.Milliseconds()))
	b = appendPrefix(b, m.Network6)
	return appendPrefix(b, m.Subnet6)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, 0)
	}
	s := a.Unmap().AsSlice()
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendPrefix(b []byte, p netip.Prefix) []byte {
	b = appendAddr(b, p.Addr())
	if p.IsValid() {
		b = append(b, byte(p.Bits()))
	}
	return b
}

var errShort = errors.New("truncated")

// reader consumes b front to back; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) addr() netip.Addr {
	switch n := r.u8(); n {
	case 0:
		return netip.Addr{}
	case 4, 16:
		a, _ := netip.AddrFromSlice(r.take(int(n)))
		return a
	default:
		if r.err == nil {
			r.err = fmt.Errorf("address length %d", n)
		}
		return netip.Addr{}
	}
}

func (r *reader) prefix() netip.Prefix {
	a := r.addr()
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := int(r.u8())
	p := netip.PrefixFrom(a, bits)
	if r.err == nil && (bits > a.BitLen() || p != p.Masked()) {
		r.err = fmt.Errorf("bad prefix %s/%d", a, bits)
	}
	return p
}

// decodeMeta parses and checks metadata; it never panics on any input.
func decodeMeta(b []byte) (meta, error) {
	r := reader{b: b}
	var m meta
	m.Version = r.u8()
	if r.err == nil && m.Version == 0 {
		return m, errors.New("metadata version 0")
	}
	if v := r.take(4); v != nil {
		m.Flags = binary.BigEndian.Uint32(v)
	}
	m.Name = string(r.take(int(r.u8())))
	m.Network = r.prefix()
	m.Subnet = r.prefix()
	if v := r.take(8); v != nil {
		m.Seq = binary.BigEndian.Uint64(v)
	}
	ep := r.addr()
	var port uint16
	if v := r.take(2); v != nil {
		port = binary.BigEndian.Uint16(v)
	}
	m.Endpoint = netip.AddrPortFrom(ep, port)
	m.Address = r.addr()
	if m.Version >= 2 {
		var ms uint64
		if v := r.take(8); v != nil {
			ms = binary.BigEndian.Uint64(v)
		}
		m.LeaseTTL = time.Duration(min(ms, uint64(math.MaxInt64/int64(time.Millisecond)))) * time.Millisecond
	}
	if m.Version >= 3 {
		m.Network6 = r.prefix()
		m.Subnet6 = r.prefix()
	}
	if r.err != nil {
		return m, fmt.Errorf("metadata: %w", r.err)
	}
	switch {
	case validName(m.Name) != nil:
		return m, fmt.Errorf("metadata: name %q: %w", m.Name, validName(m.Name))
	case !m.Network.IsValid():
		return m, errors.New("metadata: no network")
	case !ep.IsValid() || port == 0:
		return m, fmt.Errorf("metadata: bad endpoint %s", m.Endpoint)
	case m.Subnet.IsValid() != m.Address.IsValid():
		return m, errors.New("metadata: subnet and overlay address must come together")
	case m.Subnet.IsValid() && !m.Subnet.Contains(m.Address):
		return m, fmt.Errorf("metadata: overlay address %s outside subnet %s", m.Address, m.Subnet)
	case m.Network6.IsValid() && !m.Network6.Addr().Is6():
		return m, fmt.Errorf("metadata: network6 %s is not IPv6", m.Network6)
	case m.Subnet6.IsValid() && (!m.Subnet.IsValid() || !m.Network6.Contains(m.Subnet6.Addr()) || m.Subnet6.Bits() <= m.Network6.Bits()):
		return m, fmt.Errorf("metadata: subnet6 %s without a subnet or outside network6 %s", m.Subnet6, m.Network6)
	}
	return m, nil
}
