package subnetenv

import (
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

const testEnv = "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.0/24\nWEFT_MTU=1424\nWEFT_IPMASQ=false\n"

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Env
		err      string // substring; "" means success
	}{
		{name: "agent's", in: testEnv, want: Env{
			Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.1.0/24"), MTU: 1424}},
		{name: "comments quotes unknown keys", in: "# weft\nWEFT_NETWORK=\"10.16.0.0/12\"\n\nWEFT_SUBNET = 10.17.3.0/24\nWEFT_IPMASQ=true\nWEFT_FUTURE=1\n",
			want: Env{Network: netip.MustParsePrefix("10.16.0.0/12"), Subnet: netip.MustParsePrefix("10.17.3.0/24"), IPMasq: true}},
		{name: "host bits are masked", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.1/24\n",
			want: Env{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.1.0/24")}},
		{name: "no network", in: "WEFT_SUBNET=10.244.1.0/24\n", err: "no WEFT_NETWORK"},
		{name: "no subnet", in: "WEFT_NETWORK=10.244.0.0/16\n", err: "no WEFT_SUBNET"},
		{name: "empty", in: "", err: "no WEFT_NETWORK"},
		{name: "outside", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.245.1.0/24\n", err: "not inside"},
		{name: "as big as network", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.0.0/16\n", err: "not inside"},
		{name: "no room", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.0/31\n", err: "no room"},
		{name: "bad prefix", in: "WEFT_NETWORK=10.244.0.0\nWEFT_SUBNET=10.244.1.0/24\n", err: "line 1: WEFT_NETWORK"},
		{name: "bad mtu", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.0/24\nWEFT_MTU=big\n", err: "line 3: WEFT_MTU"},
		{name: "tiny mtu", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.0/24\nWEFT_MTU=20\n", err: "out of range"},
		{name: "bad ipmasq", in: "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.0/24\nWEFT_IPMASQ=maybe\n", err: "WEFT_IPMASQ"},
		{name: "dual-stack", in: testEnv + "WEFT_NETWORK6=fd00:10:244::/56\nWEFT_SUBNET6=fd00:10:244:1::/64\n", want: Env{
			Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.1.0/24"), MTU: 1424,
			Network6: netip.MustParsePrefix("fd00:10:244::/56"), Subnet6: netip.MustParsePrefix("fd00:10:244:1::/64")}},
		{name: "subnet6 alone", in: testEnv + "WEFT_SUBNET6=fd00:10:244:1::/64\n", err: "come together"},
		{name: "subnet6 outside", in: testEnv + "WEFT_NETWORK6=fd00:10:244::/56\nWEFT_SUBNET6=fd00:10:245:1::/64\n", err: "not inside WEFT_NETWORK6"},
		{name: "network6 is v4", in: testEnv + "WEFT_NETWORK6=10.0.0.0/8\nWEFT_SUBNET6=fd00:10:244:1::/64\n", err: "not an IPv6 prefix"},
		{name: "not key=value", in: "WEFT_NETWORK 10.244.0.0/16\n", err: "want KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("want error containing %q, have %v", tt.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("have %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSubnetEnvGateway(t *testing.T) {
	s := Env{Subnet: netip.MustParsePrefix("10.244.7.0/24")}
	if g := s.Gateway(); g != netip.MustParseAddr("10.244.7.1") {
		t.Fatalf("gateway %s", g)
	}
}

func TestReadSubnetEnvMissing(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "subnet.env"))
	if !errors.Is(err, ErrNoAgent) {
		t.Fatalf("want ErrNoAgent, have %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(testEnv))
	f.Add([]byte("WEFT_NETWORK=fd00::/48\nWEFT_SUBNET=fd00:0:0:1::/64\n"))
	f.Add([]byte("WEFT_NETWORK=10.0.0.0/8\nWEFT_SUBNET=10.0.0.0/30\nWEFT_MTU=68"))
	f.Add([]byte(testEnv + "WEFT_NETWORK6=fd00:10:244::/56\nWEFT_SUBNET6=fd00:10:244:1::/64\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		if !s.Network.Contains(s.Subnet.Addr()) || s.Subnet.Bits() <= s.Network.Bits() {
			t.Fatalf("accepted %+v", s)
		}
		if g := s.Gateway(); !s.Subnet.Contains(g) {
			t.Fatalf("gateway %s outside %s", g, s.Subnet)
		}
		if s.DualStack() && (!s.Network6.Contains(s.Subnet6.Addr()) || !s.Subnet6.Contains(s.Gateway6())) {
			t.Fatalf("accepted %+v", s)
		}
	})
}

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	want := Env{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.3.0/24"), MTU: 1424,
		Network6: netip.MustParsePrefix("fd00:10:244::/56"), Subnet6: netip.MustParsePrefix("fd00:10:244:3::/64")}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || got != want {
		t.Fatalf("read back %+v, %v; want %+v", got, err, want)
	}
	if a, g := NodeAddress(want.Subnet), got.Gateway(); a != netip.MustParseAddr("10.244.3.0") || g != netip.MustParseAddr("10.244.3.1") {
		t.Fatalf("node address %s, gateway %s", a, g)
	}
}

func TestWriteAs(t *testing.T) {
	s, err := Parse([]byte("WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.3.0/24\nWEFT_MTU=1424\nWEFT_IPMASQ=false\n"))
	if err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string][]string{
		"env":    {"WEFT_SUBNET=10.244.3.0/24\n", "WEFT_GATEWAY=10.244.3.1\n", "WEFT_MTU=1424\n"},
		"docker": {`"bip": "10.244.3.1/24"`, `"mtu": 1424`, "--bip=10.244.3.1/24 --mtu=1424"},
		"podman": {"podman network create --subnet 10.244.3.0/24 --gateway 10.244.3.1 --opt mtu=1424 weft\n"},
		"json":   {`"gateway": "10.244.3.1"`},
	} {
		var out strings.Builder
		if err := s.WriteAs(&out, format, "weft"); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: no %q in\n%s", format, w, out.String())
			}
		}
	}
	if err := s.WriteAs(io.Discard, "xml", "weft"); err == nil {
		t.Error("format xml accepted")
	}
}

func TestWriteAsDualStack(t *testing.T) {
	s, err := Parse([]byte(testEnv + "WEFT_NETWORK6=fd00:10:244::/56\nWEFT_SUBNET6=fd00:10:244:1::/64\n"))
	if err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string][]string{
		"env":    {"WEFT_SUBNET6=fd00:10:244:1::/64\n", "WEFT_GATEWAY6=fd00:10:244:1::1\n", "WEFT_NETWORK6=fd00:10:244::/56\n"},
		"docker": {`"ipv6": true`, `"fixed-cidr-v6": "fd00:10:244:1::/64"`, "--ipv6 --fixed-cidr-v6=fd00:10:244:1::/64"},
		"podman": {"--subnet 10.244.1.0/24 --gateway 10.244.1.1 --ipv6 --subnet fd00:10:244:1::/64 --gateway fd00:10:244:1::1 --opt mtu=1424 weft\n"},
		"json":   {`"gateway6": "fd00:10:244:1::1"`, `"subnet6": "fd00:10:244:1::/64"`},
	} {
		var out strings.Builder
		if err := s.WriteAs(&out, format, "weft"); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: no %q in\n%s", format, w, out.String())
			}
		}
	}
}
