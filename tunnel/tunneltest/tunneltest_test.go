package tunneltest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/tunnel"
)

const waitFor = 10 * time.Second // generous: only a hang hits it

func newBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

func TestReadHonoursOffsetAndBatch(t *testing.T) {
	const offset = 16
	d := New("fake0", 100, 3)
	t.Cleanup(func() { d.Close() })
	for i := range 4 {
		d.Inject([]byte(fmt.Sprintf("packet-%d", i)))
	}
	bufs, sizes := newBufs(3, offset+100)
	var got []string
	for len(got) < 4 {
		n, err := d.Read(bufs, sizes, offset)
		if err != nil {
			t.Fatal(err)
		}
		if n < 1 || n > 3 {
			t.Fatalf("Read returned %d packets, want 1..3", n)
		}
		for i := range n {
			if !bytes.Equal(bufs[i][:offset], make([]byte, offset)) {
				t.Fatalf("Read wrote into the headroom of buffer %d", i)
			}
			got = append(got, string(bufs[i][offset:offset+sizes[i]]))
		}
	}
	for i, s := range got {
		if want := fmt.Sprintf("packet-%d", i); s != want {
			t.Errorf("packet %d = %q, want %q", i, s, want)
		}
	}
}

func TestReadChecksContract(t *testing.T) {
	d := New("fake0", 100, 2)
	t.Cleanup(func() { d.Close() })
	for _, tc := range []struct {
		name   string
		n      int
		size   int
		offset int
	}{
		{"too few buffers", 1, 200, 0},
		{"buffer shorter than offset+MTU", 2, 100, 10},
		{"negative offset", 2, 200, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bufs, sizes := newBufs(tc.n, tc.size)
			if _, err := d.Read(bufs, sizes, tc.offset); err == nil {
				t.Fatal("Read succeeded, want an error")
			}
		})
	}
}

func TestOversizedPacketFailsAlone(t *testing.T) {
	d := New("fake0", 10, 2)
	t.Cleanup(func() { d.Close() })
	d.Inject([]byte("ok"))
	d.Inject(make([]byte, 50)) // bigger than offset+MTU
	d.Inject([]byte("next"))
	bufs, sizes := newBufs(2, 10)
	if n, err := d.Read(bufs, sizes, 0); err != nil || n != 1 || string(bufs[0][:sizes[0]]) != "ok" {
		t.Fatalf("first Read = %d, %v; want the one packet that fits", n, err)
	}
	if _, err := d.Read(bufs, sizes, 0); err == nil {
		t.Fatal("second Read succeeded, want an error for the oversized packet")
	}
	if n, err := d.Read(bufs, sizes, 0); err != nil || n != 1 || string(bufs[0][:sizes[0]]) != "next" {
		t.Fatalf("third Read = %d, %v; want the packet after the dropped one", n, err)
	}
}

func TestWriteCopiesFromOffset(t *testing.T) {
	d := New("fake0", 100, 1)
	t.Cleanup(func() { d.Close() })
	const offset = tunnel.WriteOffset + 4
	buf := append(bytes.Repeat([]byte{0xee}, offset), "hello"...)
	if err := d.Write([][]byte{buf}, offset); err != nil {
		t.Fatal(err)
	}
	copy(buf[offset:], "XXXXX") // the device must have taken a copy
	select {
	case pkt := <-d.Written():
		if string(pkt) != "hello" {
			t.Fatalf("Written got %q, want %q", pkt, "hello")
		}
	case <-time.After(waitFor):
		t.Fatal("nothing written")
	}
	if !bytes.Equal(buf[offset-tunnel.WriteOffset:offset], make([]byte, tunnel.WriteOffset)) {
		t.Error("Write left the headroom before offset untouched; it is scratch space")
	}
}

func TestWriteErrors(t *testing.T) {
	d := New("fake0", 100, 1)
	t.Cleanup(func() { d.Close() })
	pkt := make([]byte, 20)
	if err := d.Write([][]byte{pkt}, tunnel.WriteOffset-1); err == nil {
		t.Error("Write with offset < WriteOffset succeeded")
	}
	err := d.Write([][]byte{pkt[:tunnel.WriteOffset], pkt}, tunnel.WriteOffset)
	if err == nil {
		t.Error("Write with an empty packet returned no error")
	}
	select {
	case got := <-d.Written():
		if len(got) != 20-tunnel.WriteOffset {
			t.Errorf("written packet has %d bytes, want %d", len(got), 20-tunnel.WriteOffset)
		}
	case <-time.After(waitFor):
		t.Fatal("the non-empty packet of the batch was not written")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	d := New("fake0", 100, 1)
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := newBufs(1, 100)
		_, err := d.Read(bufs, sizes, 0)
		errc <- err
	}()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, tunnel.ErrClosed) {
			t.Fatalf("Read after Close = %v, want ErrClosed", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Read still blocked after Close")
	}
	if err := d.Write([][]byte{make([]byte, 20)}, tunnel.WriteOffset); !errors.Is(err, tunnel.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	d.Inject([]byte("dropped")) // must not block
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
