//go:build !race

package membership

// raceEnabled scales down tests that measure size rather than concurrency.
const raceEnabled = false
