package peer

import "testing"

func TestParse(t *testing.T) {
	good := map[string]string{
		"b=10.244.2.0/24@192.0.2.2":                         "b 10.244.2.0/24 192.0.2.2:6081",
		"b=10.244.2.0/24@192.0.2.2:7000":                    "b 10.244.2.0/24 192.0.2.2:7000",
		"b=10.244.2.0/24@[fd00::2]:7000":                    "b 10.244.2.0/24 [fd00::2]:7000",
		"b=10.244.2.0/24@fd00::2":                           "b 10.244.2.0/24 [fd00::2]:6081",
		"node-x=10.244.128.0/17@192.0.2.9":                  "node-x 10.244.128.0/17 192.0.2.9:6081",
		"b=10.244.2.0/24,fd00:10:244:2::/64@[fd00::2]:7000": "b 10.244.2.0/24 [fd00::2]:7000 fd00:10:244:2::/64",
		"b=10.244.2.0/24,fd00:10:244:2::/64@192.0.2.2":      "b 10.244.2.0/24 192.0.2.2:6081 fd00:10:244:2::/64",
	}
	for in, want := range good {
		p, err := Parse(in, 6081)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		got := p.Name + " " + p.Subnet.String() + " " + p.Endpoint.String()
		if p.Subnet6.IsValid() {
			got += " " + p.Subnet6.String()
		}
		if got != want || p.State != Static {
			t.Errorf("%s: got %s (%s), want %s", in, got, p.State, want)
		}
	}
	for _, in := range []string{"", "b", "=10.244.2.0/24@192.0.2.2", "b=10.244.2.0/24", "b=10.244.2.1/24@192.0.2.2",
		"b=10.244.2.0/24@host.example", "b=10.244.2.0/24@192.0.2.2:0", "b=10.244.2.0/24@192.0.2.2:70000", "b=bad@192.0.2.2",
		"b=10.244.2.0/24,@192.0.2.2", "b=10.244.2.0/24,fd00::1/64@192.0.2.2", "b=fd00::/64,10.244.2.0/24@192.0.2.2",
		"b=10.244.2.0/24,10.244.3.0/24@192.0.2.2", "b=10.244.2.0/24,fd00::/64,fd01::/64@192.0.2.2", "b=10.244.2.0/24@[fd00::2"} {
		if _, err := Parse(in, 6081); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// Only the states that mean "reachable" are routed: a misspelled or empty
// state is not, nor the removed "suspect".
func TestRoutable(t *testing.T) {
	want := map[State]bool{Static: true, Alive: true, "suspect": false, Dead: false, Left: false, "": false, "Alive": false, "dead ": false}
	for s, w := range want {
		if s.Routable() != w {
			t.Errorf("State(%q).Routable() = %v, want %v", s, !w, w)
		}
	}
	if len(States) != 4 {
		t.Errorf("States lists %d states, want 4", len(States))
	}
}
