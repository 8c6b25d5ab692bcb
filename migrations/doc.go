// Package migrations holds tipreaper's database schema as numbered SQL files embedded in the binary, one
// directory per database: postgres/ for PostgreSQL and sqlite/ for the embedded SQLite file.
//
// Each file is in goose format (`-- +goose Up` / `-- +goose Down`) and runs in one transaction.
// internal/store applies them with a goose Provider built on Postgres or SQLite, so no migration
// state lives in package globals and several stores (or parallel tests) may migrate at once:
//
//	store.Migrate ──▶ goose.NewProvider(dialect, db, migrations.Postgres()) ──▶ Up
//
// The two directories describe the same tables with the same columns; only the types differ
// (timestamptz/uuid/jsonb in PostgreSQL, TEXT in SQLite). A change to one needs the same change,
// under the same number, in the other.
package migrations
