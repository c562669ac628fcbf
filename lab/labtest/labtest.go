// Package labtest builds labs for tests: every test that needs network
// namespaces gets them from New, which closes the lab when the test ends and
// fails the test if a namespace outlives Close.
package labtest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/lab"
)

// Timeout bounds building a lab (a limit, not a speed requirement).
const Timeout = time.Minute

// New builds the lab cfg describes and closes it when the test ends, failed
// or not, then checks that no namespace of cfg.Prefix is left. Without
// cfg.Log the lab logs warnings to the test's output. The caller checks
// root and tools first (testenv.Require, lab.Require).
func New(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	defer cancel()
	l, err := lab.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(l.Switch.Netns, "-u") // cfg.Prefix or its default
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if left := Namespaces(t, prefix); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	})
	return l
}

// Namespaces lists the namespaces of the lab with this prefix that exist
// (lab.Namespaces), failing the test if it cannot.
func Namespaces(t testing.TB, prefix string) []string {
	t.Helper()
	names, err := lab.Namespaces(prefix)
	if err != nil {
		t.Error(err)
	}
	return names
}
