package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the PostgreSQL migrations, rooted so that goose finds the numbered files at the top.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the SQLite migrations, rooted so that goose finds the numbered files at the top.
func SQLite() fs.FS { return sub("sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and dir is a constant of this file.
		panic("migrations: " + err.Error())
	}
	return f
}
