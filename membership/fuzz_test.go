package membership

import (
	"net/netip"
	"testing"
	"time"
)

func FuzzDecodeMeta(f *testing.F) {
	md := meta{
		Name: "node-a", Network: netip.MustParsePrefix("10.244.0.0/16"),
		Subnet: netip.MustParsePrefix("10.244.7.0/24"), Address: netip.MustParseAddr("10.244.7.0"),
		Endpoint: netip.MustParseAddrPort("192.0.2.10:6081"),
	}
	f.Add(md.encode())
	f.Add(append(md.encode(), 9, 9, 9))
	v6 := md
	v6.Network, v6.Subnet = netip.MustParsePrefix("fd00::/48"), netip.MustParsePrefix("fd00:0:0:7::/64")
	v6.Address, v6.Endpoint = v6.Subnet.Addr(), netip.MustParseAddrPort("[2001:db8::1]:6081")
	f.Add(v6.encode())
	pending := md
	pending.Subnet, pending.Address = netip.Prefix{}, netip.Addr{}
	f.Add(pending.encode())
	f.Add(dualMeta().encode())
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeMeta(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same meaning.
		again, err := decodeMeta(got.encode())
		got.Version = metaVersion
		if err != nil || again != got {
			t.Fatalf("re-encoding %+v gives %+v, %v", got, again, err)
		}
	})
}

// FuzzMergeRemoteState feeds push/pull states through the real merge path.
func FuzzMergeRemoteState(f *testing.F) {
	now := time.Now()
	f.Add(encodeState([]Lease{
		{Name: "a", Subnet: netip.MustParsePrefix("10.244.1.0/24"), Seq: 1, Version: 1, LastSeen: now,
			Gossip: netip.MustParseAddrPort("192.0.2.1:7946"), Endpoint: netip.MustParseAddrPort("192.0.2.1:6081")},
		{Name: "b", Subnet: netip.MustParsePrefix("10.244.2.0/24"), Seq: 2, Version: 3, Released: true, ReleasedAt: now},
		{Name: "c", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Seq: 2, Version: 1},
		{Name: "n", Subnet: netip.MustParsePrefix("10.244.9.0/24"), Seq: 1, Version: 9},
	}))
	f.Add([]byte(`{"v":1,"leases":null}`))
	f.Add([]byte(`{"v":2,"leases":[{"name":"x","subnet":"10.244.3.0/24","version":1,"future":true}]}`))
	f.Add([]byte(`{"v":1,"leases":[{"name":"","subnet":"::/0","version":18446744073709551615}]}`))
	f.Add([]byte(`not json`))
	cfg := testConfig("n", f.TempDir())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d := &delegate{m}
		d.MergeRemoteState(b, false)
		d.NotifyMsg(append([]byte{msgLease}, b...))
		for _, l := range m.Leases() {
			if checkLease(l, cfg.Network) != nil {
				t.Fatalf("an invalid lease got in: %+v", l)
			}
		}
		if _, err := decodeState(d.LocalState(false)); err != nil {
			t.Fatalf("our own state does not decode: %v", err)
		}
	})
}
