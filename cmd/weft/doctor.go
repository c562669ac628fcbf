package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/doctor"
	"github.com/weftnet/weft/internal/cli"
)

// cmdDoctor checks the local node and every peer's path, and says what is
// wrong and how to fix it. It exits 1 if anything failed.
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("weft doctor", "usage: weft doctor [--run-dir DIR]\n\nChecks the running node, its host and every peer's path, and says what is wrong and how to fix it.\nExits 1 if a check failed.")
	runDir := runDirFlag(fs)
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := api.NewClient(*runDir).Status(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "%-4s  node: %v\n      fix: start it (systemctl start weft, or weft up), or pass the --run-dir it runs with\n", doctor.Fail, err)
		return errDoctor
	}
	if doctor.Write(stdout, doctor.Check(s)) {
		return errDoctor
	}
	return nil
}

// errDoctor makes doctor exit 1 after it printed what failed.
var errDoctor = errors.New("problems found (see above)")
