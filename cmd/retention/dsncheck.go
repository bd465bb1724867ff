package main

import (
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// checkDSN refuses, as a usage error, a connection string that pgx cannot parse. The message
// says where the string came from (where: "DATABASE_URL" or "DATABASE_URL_FILE: PATH") and what
// kind of problem it has, never any of the string: pgx's own parse errors quote it (their
// password masking is best effort), and a file mounted by mistake may hold another secret.
func checkDSN(where, dsn string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return dsnError(where, dsn, err)
	}
	return nil
}

// dsnError is the usage error for dsn, which pgx could not parse with err. Only fixed texts of
// err are looked at; none of it is quoted.
func dsnError(where, dsn string, err error) error {
	msg := err.Error()
	var shape, hint string
	switch {
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		shape = "a postgres:// URL that cannot be parsed"
	case strings.Contains(dsn, "="):
		shape = "keyword=value settings that cannot be parsed"
	default:
		return usagef("%s: not a valid PostgreSQL connection string (neither a postgres:// URL nor keyword=value settings, %d bytes): "+
			"check that it holds the connection string, e.g. postgres://retention@db:5432/app, and not another secret", where, len(dsn))
	}
	switch {
	case strings.Contains(msg, "failed to configure TLS"):
		hint = "check sslmode (disable, allow, prefer, require, verify-ca or verify-full) and that sslrootcert, sslcert and sslkey name readable files"
	case strings.Contains(msg, "cannot parse pool_"):
		hint = "check the pool_* settings: each is a number or a duration such as 30s"
	case strings.Contains(msg, "invalid port"):
		hint = "check the port: a number from 1 to 65535"
	default:
		hint = "check the host, the port, the percent-encoding of the user and password, and each setting's name and value"
	}
	return usagef("%s: not a valid PostgreSQL connection string (%s): %s", where, shape, hint)
}
