package main

import (
	"context"
	"fmt"
	"io"

	"github.com/convai-retention/retention/migrations"
)

// migrateOptions is the flag table of "retention migrate".
func migrateOptions(level *string) options { return options{logLevelOption(level)} }

func migrateHelp(w io.Writer) {
	fmt.Fprint(w, "usage: retention migrate [--log-level LEVEL]\n\n")
	var level string
	migrateOptions(&level).flagSet("migrate").usage(w)
}

// migrate is "retention migrate": it brings the schema up to date. Safe to run twice, or from
// two pods at once.
func (a *app) migrate(ctx context.Context, args []string) error {
	var level string
	if err := migrateOptions(&level).flagSet("migrate").parse(args, a.getenv); err != nil {
		return err
	}
	log, err := newLogger(a.stderr, logLevel(level, a.getenv), a.redactor)
	if err != nil {
		return err
	}
	pool, err := a.connectDatabase(ctx, log, connect, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Release()
	from, to, err := migrations.Migrate(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if from == to {
		log.Info("schema is up to date", "version", to)
	} else {
		log.Info("schema migrated", "from", from, "to", to)
	}
	fmt.Fprintf(a.stdout, "schema version %d (was %d)\n", to, from)
	return nil
}
