// Command convai-fake serves a stand-in for Convai's chat-history endpoints (delete, list and
// details), with seeded faults, for demos and end-to-end checks of the retention job. It holds
// the sessions of --sessions, accepts the key in CONVAI_API_KEY, prints "convai-fake listening on
// http://ADDR" once it listens, and also serves GET /_fake/deleted, GET /_fake/sessions?character=C
// and GET /_fake/stats so scripts can check what happened.
//
// Exit codes: 0 after a clean shutdown on SIGINT or SIGTERM, 2 on bad flags or environment, 1
// on any other error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := command(os.Getenv, os.Stdout, os.Stderr).Run(ctx, os.Args[1:])
	stop()
	os.Exit(exitCode(err, os.Stderr))
}
