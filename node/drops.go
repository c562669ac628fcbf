package node

import (
	"sync/atomic"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
)

// dropReason names why a packet was not forwarded. Per-packet problems become
// counters, never log lines. The names are part of weft status's output.
type dropReason int

// pass is the verdict of a packet that is not dropped.
const pass dropReason = -1

const (
	// From the TUN (this node's own traffic).
	dropNotOverlay    dropReason = iota // destination outside --network (IPv6 on a v4 overlay…)
	dropMulticast                       // multicast: the host's own (MLD, mDNS); the overlay carries none
	dropForeignSource                   // source not in this node's subnet
	dropNoRoute                         // no peer holds the destination
	dropLocalDest                       // destination in this node's own subnet
	dropTooBig                          // larger than the TUN MTU
	dropTunMalformed                    // not a parseable IP packet
	dropSendError                       // the UDP socket refused the batch
	dropTunReadError                    // a TUN read failed (its packets are lost)
	// From the wire.
	dropUnknownPeer   // datagram from an endpoint that is no peer
	dropSpoofedSource // inner source outside the sending peer's subnet
	dropNotOurSubnet  // inner destination outside this node's subnet
	dropTunWriteError // the TUN refused the batch
	dropDecodeError   // a codec error outside encap.Errors (a bug, counted all the same)
	dropBadControl    // an authentic control message weft does not understand
	dropProbeToken    // a probe answer whose token matches no probe we sent
	dropControlQueue  // a probe answer not sent: the control sender was behind
	dropUDPReadError  // a UDP read failed
	// encap.Open's reasons follow, in encap.Errors order.
	dropEncapBase
)

var dropNames = func() []string {
	names := []string{
		dropNotOverlay:    "not_overlay",
		dropMulticast:     api.DropMulticast,
		dropForeignSource: "foreign_source",
		dropNoRoute:       "no_route",
		dropLocalDest:     "local_destination",
		dropTooBig:        "too_big",
		dropTunMalformed:  "tun_malformed",
		dropSendError:     "send_error",
		dropTunReadError:  "tun_read_error",
		dropUnknownPeer:   "unknown_peer",
		dropSpoofedSource: "spoofed_source",
		dropNotOurSubnet:  "not_our_subnet",
		dropTunWriteError: "tun_write_error",
		dropDecodeError:   "decode_error",
		dropBadControl:    "bad_control",
		dropProbeToken:    "bad_probe_token",
		dropControlQueue:  "control_overflow",
		dropUDPReadError:  "udp_read_error",
	}
	for _, err := range encap.Errors {
		names = append(names, err.Error())
	}
	return names
}()

// drops counts dropped packets by reason.
type drops struct {
	n [dropEncapBase + 24]atomic.Uint64 // room for encap.Errors
}

func (d *drops) add(r dropReason, n uint64) { d.n[r].Add(n) }

// addEncap counts an error returned by the codec and returns its reason.
func (d *drops) addEncap(err error) dropReason {
	r := encapReason(err)
	d.n[r].Add(1)
	return r
}

// encapReason is the drop reason of an error returned by the codec.
func encapReason(err error) dropReason {
	for i, e := range encap.Errors {
		if e == err {
			return dropEncapBase + dropReason(i)
		}
	}
	return dropDecodeError
}

// snapshot returns every reason with its count (zeros included, so operators
// see which reasons exist).
func (d *drops) snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(dropNames))
	for i, name := range dropNames {
		m[name] = d.n[i].Load()
	}
	return m
}
