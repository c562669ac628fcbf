package encap

import (
	"bytes"
	"testing"
)

// sealControl seals msg as a control message with c.
func sealControl(t *testing.T, c Codec, msg []byte) []byte { return sealWith(t, c.SealControl, c, msg) }

// sealWith seals a copy of msg with seal (c's Seal or SealControl) into a
// buffer of exactly the room c needs.
func sealWith(t *testing.T, seal func([]byte, int, int) ([]byte, error), c Codec, msg []byte) []byte {
	t.Helper()
	buf := make([]byte, c.Headroom()+len(msg)+c.Tailroom())
	copy(buf[c.Headroom():], msg)
	d, err := seal(buf, c.Headroom(), len(msg))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Control messages round-trip through both codecs, are never taken for
// data (nor data for control), and a sealed one's O bit is authenticated.
func TestControlMessages(t *testing.T) {
	plain, _ := NewPlain(7)
	sealed := newSealed(t, "a", CipherAuto, 0)
	msg := []byte("probe: not an IP packet")
	for _, c := range []Codec{plain, sealed} {
		p := c.NewPeer("a")
		d := sealControl(t, c, msg)
		if !IsControl(d) {
			t.Fatalf("%T: a control datagram is not IsControl", c)
		}
		if _, err := c.OpenFrom(nil, bytes.Clone(d), c.NewPeer("a")); err != ErrControl {
			t.Fatalf("%T: OpenFrom of a control datagram: %v, want %v", c, err, ErrControl)
		}
		got, err := c.OpenControlFrom(bytes.Clone(d), p)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%T: OpenControlFrom: %q, %v", c, got, err)
		}
		data := sealWith(t, c.Seal, c, ipv4(40))
		if IsControl(data) {
			t.Fatalf("%T: a data datagram is IsControl", c)
		}
		if _, err := c.OpenControlFrom(data, c.NewPeer("a")); err != ErrFormat {
			t.Fatalf("%T: OpenControlFrom of data: %v, want %v", c, err, ErrFormat)
		}
	}
	// Setting the O bit of a sealed data packet breaks its tag.
	d := sealPkt(t, sealed, ipv4(40))
	d[1] |= flagControl
	if _, err := sealed.OpenControlFrom(d, sealed.NewPeer("a")); err != ErrAuth {
		t.Fatalf("data turned control: %v, want %v", err, ErrAuth)
	}
	// A plaintext control message is refused by a sealed node.
	if _, err := sealed.OpenControlFrom(sealControl(t, plain, msg), sealed.NewPeer("a")); err != ErrUnauthenticated {
		t.Fatalf("plaintext control at a sealed node: %v, want %v", err, ErrUnauthenticated)
	}
	// A sealed control message is refused by a plaintext node.
	if _, err := plain.OpenControlFrom(sealControl(t, sealed, msg), nil); err != ErrCritical {
		t.Fatalf("sealed control at a plaintext node: %v, want %v", err, ErrCritical)
	}
}
