package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/source"
)

// newClient returns the Convai client for key at CONVAI_API_URL, keeping every secret read so
// far out of its errors.
func (a *app) newClient(baseURL, key string) (*convai.Client, error) {
	return convai.New(convai.Config{BaseURL: baseURL, APIKey: key, Secrets: a.secretValues(),
		UserAgent: "convai-retention/" + buildVersion()})
}

// apiStore is what verify and discover need beside their flags: the API client, and a store on
// the source rel. Close releases both.
type apiStore struct {
	client *convai.Client
	pool   *pgxpool.Pool
	store  *source.Store
}

// openAPIStore reads the key and the database URL, and connects (bounded, as a run's setup is).
func (a *app) openAPIStore(ctx context.Context, rel source.Relation) (*apiStore, error) {
	dsn, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	key, err := a.apiKey()
	if err != nil {
		return nil, err
	}
	e := &apiStore{}
	if e.client, err = a.newClient(a.getenv("CONVAI_API_URL"), key); err != nil {
		return nil, err
	}
	if e.pool, err = connectCurrent(ctx, dsn, 4); err != nil {
		e.close()
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	src, err := source.Inspect(setup, e.pool, rel)
	if err != nil {
		e.close()
		return nil, err
	}
	e.store = source.New(e.pool, src, source.Config{})
	return e, nil
}

func (e *apiStore) close() {
	if e.pool != nil {
		e.pool.Close()
	}
	e.client.CloseIdleConnections()
}
