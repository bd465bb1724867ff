package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/policy/policyfile"
)

// readIntervalSQL reads one max_age as PostgreSQL does: the interval (in binary) and its text.
const readIntervalSQL = `SELECT $1::text::interval, $1::text::interval::text`

// intervalReader reads max_age texts as PostgreSQL does, with their text and fields, all in one
// round trip: one statement per text, pipelined, each followed by its own Sync, so that a value
// PostgreSQL refuses fails its own statement only (PostgreSQL 15 has no pg_input_is_valid to
// test a value inside one query). A value refused as an interval (SQLSTATE class 22, data
// exception) is a Reading with Invalid set.
func intervalReader(ctx context.Context, pool *pgxpool.Pool) policyfile.ReadIntervals {
	return func(maxAges []string) (map[string]policyfile.Reading, error) {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("read max_age: %w", err)
		}
		defer conn.Release()
		out, err := readIntervals(ctx, conn.Conn().PgConn(), conn.Conn().TypeMap(), maxAges)
		if err != nil {
			return nil, fmt.Errorf("read max_age: %w", err)
		}
		return out, nil
	}
}

// readIntervals sends a statement and a Sync per text, flushes them once, then reads the
// results in order.
func readIntervals(ctx context.Context, c *pgconn.PgConn, types *pgtype.Map, maxAges []string) (map[string]policyfile.Reading, error) {
	p := c.StartPipeline(ctx)
	for _, text := range maxAges {
		p.SendQueryParams(readIntervalSQL, [][]byte{[]byte(text)}, []uint32{pgtype.TextOID},
			[]int16{pgtype.TextFormatCode}, []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode})
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		p.Close()
		return nil, err
	}
	out := make(map[string]policyfile.Reading, len(maxAges))
	for _, text := range maxAges {
		r, err := readInterval(p, types, text)
		if err != nil {
			p.Close()
			return nil, err
		}
		out[text] = r
	}
	if err := p.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// readInterval reads the result of one statement of readIntervals and the Sync after it.
func readInterval(p *pgconn.Pipeline, types *pgtype.Map, text string) (policyfile.Reading, error) {
	var r policyfile.Reading
	res, err := p.GetResults()
	if err == nil {
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			return r, fmt.Errorf("%q: unexpected result %T", text, res)
		}
		rows := rr.Read()
		err = rows.Err
		if err == nil && len(rows.Rows) != 1 {
			err = fmt.Errorf("%q: %d rows, want 1", text, len(rows.Rows))
		}
		if err == nil {
			var iv pgtype.Interval
			err = types.Scan(pgtype.IntervalOID, pgtype.BinaryFormatCode, rows.Rows[0][0], &iv)
			r = policyfile.Reading{Text: string(rows.Rows[0][1]), Interval: policy.Interval{Months: iv.Months, Days: iv.Days, Micros: iv.Microseconds}}
		}
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22"):
		r = policyfile.Reading{Invalid: pgErr.Message}
	case err != nil:
		return r, fmt.Errorf("%q: %w", text, err)
	}
	res, err = p.GetResults()
	if err != nil {
		return r, fmt.Errorf("%q: %w", text, err)
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		return r, fmt.Errorf("%q: unexpected result %T, want the end of the statement", text, res)
	}
	return r, nil
}
