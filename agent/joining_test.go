package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/testenv"
)

// A node told to join answers status while its seed does not exist yet:
// state "joining", the seed it tries, why that fails, and no subnet. As soon
// as the seed is up it joins, leases a subnet other than the seed's and
// answers "up"; stopping it while joining is clean too.
func TestStatusWhileJoining(t *testing.T) {
	key, err := encap.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	seedPort := freePort(t)
	seedAddr := fmt.Sprintf("127.0.0.1:%d", seedPort)
	b := startAgent(t, "b", key, seedAddr)
	var s *api.Status
	testenv.WaitFor(t, patience, "b answering joining, with the reason", func() bool {
		s, err = b.client.Status(context.Background())
		return err == nil && s.State == api.StateJoining && s.Join != nil && s.Join.LastError != ""
	})
	if s.Subnet.IsValid() || s.Name != "b" || len(s.Join.Seeds) != 1 || s.Join.Seeds[0] != seedAddr ||
		!strings.Contains(s.Join.LastError, "connection refused") || s.Join.Synced {
		t.Fatalf("joining status: %+v, join %+v", s, s.Join)
	}
	raw, err := json.Marshal(s)
	if err != nil || !bytes.Contains(raw, []byte(`"state":"joining"`)) || !bytes.Contains(raw, []byte(`"last_error":"no seed answered: `)) {
		t.Fatalf("joining status JSON: %s (%v)", raw, err)
	}
	var text bytes.Buffer
	s.WriteText(&text)
	if !strings.Contains(text.String(), "joining") || !strings.Contains(text.String(), "connection refused") {
		t.Fatalf("joining status text:\n%s", text.String())
	}

	a := startAgentOn(t, "a", key, seedPort)
	sa := a.status(t)
	sb := b.status(t)
	if sb.State != api.StateUp || sb.Join != nil || !sb.Subnet.IsValid() || sb.Subnet == sa.Subnet {
		t.Fatalf("after the seed came: b %+v (subnet %s), seed's subnet %s", sb.State, sb.Subnet, sa.Subnet)
	}
	raw, _ = json.Marshal(sb)
	if !bytes.Contains(raw, []byte(`"state":"up"`)) || bytes.Contains(raw, []byte(`"join"`)) {
		t.Fatalf("up status JSON: %s", raw)
	}

	// Stopped while joining: Run returns nil and takes the socket away.
	c := startAgent(t, "c", key, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	testenv.WaitFor(t, patience, "c answering joining", func() bool {
		s, err := c.client.Status(context.Background())
		return err == nil && s.State == api.StateJoining
	})
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("c stopped while joining: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("c did not stop while joining")
	}
	if left, _ := os.ReadDir(c.cfg.RunDir); len(left) != 0 {
		t.Fatalf("c's run dir still holds %v", left)
	}
}
