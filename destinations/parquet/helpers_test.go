package parquet

import (
	"context"
	"database/sql"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// openLocal opens a destination writing below dir.
func openLocal(t testing.TB, dir, name string) *Destination {
	t.Helper()
	return openURL(t, "file://"+dir, name, S3{})
}

func openURL(t testing.TB, url, name string, s3cfg S3) *Destination {
	t.Helper()
	d, err := Kind{}.Open(context.Background(), connector.DestinationParams{
		Name:   name,
		Config: config.Destination{Type: "parquet", Config: &Config{URL: url, S3: s3cfg}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Destination)
}

// pos8 is a position made of a big-endian counter, ordered like the counter.
func pos8(n uint64) record.Position {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return record.Position(b[:])
}

func queryStrings(t testing.TB, db *sql.DB, q string) [][]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			if v.Valid {
				row[i] = v.String
			} else {
				row[i] = "NULL"
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parquetFiles lists the *.parquet files under root, relative and slash-separated.
func parquetFiles(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(p, ".parquet") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var day1 = time.Date(2026, 3, 4, 10, 11, 12, 123456000, time.UTC)
