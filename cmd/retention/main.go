// Command retention deletes expired Convai chat sessions and records every outcome in
// PostgreSQL. Run "retention help" for its commands, flags, environment and exit codes.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
