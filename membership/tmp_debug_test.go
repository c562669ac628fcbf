package membership

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestDebugScale(t *testing.T) {
	n := 200
	cfg := func(i int, seeds ...string) Config {
		c := testConfig(fmt.Sprintf("node-%04d", i), t.TempDir(), seeds...)
		c.Memberlist = nil
		c.SettleWindow = 2 * time.Second
		c.LeaveTimeout = 100 * time.Millisecond
		return c
	}
	nodes := make([]*testNode, n)
	nodes[0] = mustLaunch(t, cfg(0))
	seeds := []string{nodes[0].seed()}
	for i := 1; i < 3; i++ {
		nodes[i] = mustLaunch(t, cfg(i, seeds[0]))
		seeds = append(seeds, nodes[i].seed())
	}
	t0 := time.Now()
	done := map[string]time.Duration{}
	var mu sync.Mutex
	for lo := 3; lo < n; lo += 50 {
		var wg sync.WaitGroup
		for i := lo; i < min(n, lo+50); i++ {
			wg.Go(func() {
				tn, err := launch(t, cfg(i, seeds[i%3]))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				done[tn.cfg.Name] = time.Since(t0)
				mu.Unlock()
				nodes[i] = tn
			})
		}
		wg.Wait()
		for i := 0; i < n && nodes[i] != nil; i++ {
			if len(nodes[i].done) > 0 {
				err := <-nodes[i].done
				t.Logf("%s (started at %v) stopped: %v\n%s", nodes[i].cfg.Name, done[nodes[i].cfg.Name], err, nodes[i].logs)
				t.FailNow()
			}
		}
	}
}
