package main

import (
	"context"
	"errors"
	"io"
)

// cmdBench runs `weft bench` (being built).
func cmdBench(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("not built yet")
}
