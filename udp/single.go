package udp

import (
	"fmt"
	"net/netip"
)

// WriteTo sends one datagram to ep. Unlike Write it is safe to call from any
// goroutine at any time, also concurrently with Write: it is for the
// occasional control message (path probes), not for traffic.
func (c *Conn) WriteTo(b []byte, ep netip.AddrPort) error {
	if !c.validEndpoint(ep) {
		return fmt.Errorf("udp: cannot send to %v from %v", ep, c.local)
	}
	_, err := c.uc.WriteToUDPAddrPort(b, ep)
	c.stats.writeCalls.Add(1)
	if err != nil {
		c.stats.writeErrors.Add(1)
		return err
	}
	c.stats.writeMessages.Add(1)
	c.stats.writeDatagrams.Add(1)
	return nil
}
