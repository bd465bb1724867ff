// Command convai-fake serves a stand-in for Convai's chat-history endpoints (delete, list and
// details) and long-term memory endpoints (memory list, delete and delete-all; end user
// delete), with seeded faults, for demos and end-to-end checks of the retention job. It holds
// the sessions of --sessions and the end users and memories of --memories, accepts the key in
// CONVAI_API_KEY, prints "convai-fake listening on http://ADDR" once it listens, and also serves
// GET /_fake/deleted, GET /_fake/sessions?character=C, GET /_fake/memories?character=C&end_user=U,
// GET /_fake/end-users and GET /_fake/stats so scripts can check what happened, and POST
// /_fake/memories to add end users and memories, and set what the session lists say of
// is_added_to_memory, while it runs.
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
