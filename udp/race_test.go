//go:build race

package udp

// Under the race detector sync.Pool drops a quarter of what is put back, so
// x/net's pooled sendmmsg scratch is reallocated now and then: allocation
// counts are not meaningful there.
func init() { raceEnabled = true }
