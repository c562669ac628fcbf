package encap

import (
	"encoding/binary"
	"fmt"
)

// GENEVE header (RFC 8926 §3.4), 8 bytes plus options:
//
//	|Ver|Opt Len|O|C| Rsvd  |        Protocol Type          |
//	|        Virtual Network Identifier (VNI)       | Rsvd  |
const (
	HeaderLen = 8
	ProtoIPv4 = 0x0800
	ProtoIPv6 = 0x86DD
	// ProtoControl is the protocol type of a plaintext weft control
	// message (O bit set): an IEEE local experimental EtherType, like
	// ProtoSealed.
	ProtoControl  = 0x88B6
	MaxVNI        = 1<<24 - 1
	flagControl   = 0x80
	flagCritical  = 0x40
	maxOptionsLen = 63 * 4
)

// Header is a decoded GENEVE header.
type Header struct {
	Version  uint8
	OptLen   int // bytes of options after the fixed header
	Control  bool
	Critical bool
	Protocol uint16
	VNI      uint32
}

// ParseHeader decodes the GENEVE header at the front of b. It checks only
// that the header and its options fit in b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrShort
	}
	h := Header{
		Version:  b[0] >> 6,
		OptLen:   int(b[0]&0x3f) * 4,
		Control:  b[1]&flagControl != 0,
		Critical: b[1]&flagCritical != 0,
		Protocol: binary.BigEndian.Uint16(b[2:4]),
		VNI:      binary.BigEndian.Uint32(b[4:8]) >> 8,
	}
	if len(b) < HeaderLen+h.OptLen {
		return h, ErrShort
	}
	return h, nil
}

// Plain is the unencrypted codec: GENEVE with no options, the inner packet as
// the payload. It authenticates nothing; weft uses it only with --insecure.
type Plain struct {
	vni uint32
}

var _ Codec = (*Plain)(nil)

// NewPlain returns the plaintext codec for network id vni (0..MaxVNI).
func NewPlain(vni uint32) (*Plain, error) {
	if vni > MaxVNI {
		return nil, fmt.Errorf("network id %d out of range 0..%d", vni, MaxVNI)
	}
	return &Plain{vni: vni}, nil
}

func (p *Plain) Headroom() int { return HeaderLen }
func (p *Plain) Tailroom() int { return 0 }

func (p *Plain) Seal(buf []byte, off, n int) ([]byte, error) {
	if off < HeaderLen || off+n > len(buf) || n < 1 {
		return nil, ErrNoRoom
	}
	switch buf[off] >> 4 {
	case 4:
		return p.wrap(buf, off, n, 0, ProtoIPv4), nil
	case 6:
		return p.wrap(buf, off, n, 0, ProtoIPv6), nil
	}
	return nil, ErrInner
}

// SealQueue is Seal: plain GENEVE carries no queue.
func (p *Plain) SealQueue(_ int, buf []byte, off, n int) ([]byte, error) { return p.Seal(buf, off, n) }

// SealControl wraps the control message buf[off:off+n] (O bit, ProtoControl).
func (p *Plain) SealControl(buf []byte, off, n int) ([]byte, error) {
	if off < HeaderLen || off+n > len(buf) {
		return nil, ErrNoRoom
	}
	return p.wrap(buf, off, n, flagControl, ProtoControl), nil
}

func (p *Plain) wrap(buf []byte, off, n int, flags byte, proto uint16) []byte {
	h := buf[off-HeaderLen : off]
	h[0], h[1] = 0, flags
	binary.BigEndian.PutUint16(h[2:4], proto)
	binary.BigEndian.PutUint32(h[4:8], p.vni<<8)
	return buf[off-HeaderLen : off+n]
}

// NewPeer returns nil: Plain keeps no per-peer state.
func (p *Plain) NewPeer(name string) *PeerState { return nil }

// OpenFrom checks the header and copies the inner packet to dst; Plain
// authenticates nothing, so the peer is ignored.
func (p *Plain) OpenFrom(dst, dgram []byte, _ *PeerState) ([]byte, error) {
	h, err := parseFor(dgram, p.vni, false)
	if err != nil {
		return nil, err
	}
	if h.Critical {
		return nil, ErrCritical
	}
	inner, err := innerPacket(h.Protocol, dgram[HeaderLen+h.OptLen:])
	if err != nil {
		return nil, err
	}
	return append(dst[:0], inner...), nil
}

// OpenControlFrom returns the message of a plaintext control datagram.
func (p *Plain) OpenControlFrom(dgram []byte, _ *PeerState) ([]byte, error) {
	h, err := parseFor(dgram, p.vni, true)
	switch {
	case err != nil:
		return nil, err
	case h.Critical:
		return nil, ErrCritical
	case h.Protocol != ProtoControl:
		return nil, ErrProtocol
	}
	return dgram[HeaderLen+h.OptLen:], nil
}

// IsControl reports whether dgram is a GENEVE control message (O bit set):
// one for the codec's OpenControlFrom, never delivered to the TUN. OpenFrom
// refuses such datagrams with ErrControl before any other work.
func IsControl(dgram []byte) bool {
	return len(dgram) >= HeaderLen && dgram[0]>>6 == 0 && dgram[1]&flagControl != 0
}

// parseFor parses the GENEVE header of a datagram for network vni, data or
// control (O bit): what both codecs check before their own format.
func parseFor(dgram []byte, vni uint32, control bool) (Header, error) {
	h, err := ParseHeader(dgram)
	switch {
	case err != nil:
		return h, err
	case h.Version != 0:
		return h, ErrVersion
	case h.Control != control:
		if control {
			return h, ErrFormat
		}
		return h, ErrControl
	case h.VNI != vni:
		return h, ErrNetwork
	}
	return h, nil
}

// innerPacket checks that b holds an IP packet of the version proto names and
// trims b to the length the IP header gives (trailing padding is allowed).
func innerPacket(proto uint16, b []byte) ([]byte, error) {
	var n int
	switch proto {
	case ProtoIPv4:
		if len(b) < 20 || b[0]>>4 != 4 || int(b[0]&0x0f)*4 < 20 {
			return nil, ErrInner
		}
		n = int(binary.BigEndian.Uint16(b[2:4]))
		if n < int(b[0]&0x0f)*4 {
			return nil, ErrInner
		}
	case ProtoIPv6:
		if len(b) < 40 || b[0]>>4 != 6 {
			return nil, ErrInner
		}
		n = 40 + int(binary.BigEndian.Uint16(b[4:6]))
	default:
		return nil, ErrProtocol
	}
	if n > len(b) {
		return nil, ErrInner
	}
	return b[:n], nil
}
