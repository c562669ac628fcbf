package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/cli"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("weft status", "usage: weft status [--json] [--run-dir DIR]\n\nShows the running node's state, peers, paths and drop counters.")
	asJSON := fs.Bool("json", false, "print JSON (the keys are stable)")
	runDir := runDirFlag(fs)
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := api.NewClient(*runDir).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	s.WriteText(stdout)
	return nil
}
