// Command reaper deletes expired customers of a Partner Center Testing in
// Production sandbox. Everything it does lives in internal/cli, so that tests
// can drive the same code with arguments and buffers.
package main

import (
	"context"
	"os"

	"github.com/tipreaper/tipreaper/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
