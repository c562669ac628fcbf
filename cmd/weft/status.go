package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/weftnet/weft/api"
)

func cmdStatus(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("status", stdout)
	asJSON := fs.Bool("json", false, "print JSON (the keys are stable)")
	runDir := runDirFlag(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
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
