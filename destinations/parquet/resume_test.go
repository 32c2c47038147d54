package parquet

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/record"
)

// A flush whose commit was lost wrote a file that begins with record 11; the source's
// replay no longer has record 11 (an API's data changed) and begins with record 12.
// Resume removes the old file before the first new one, so records 12 and 13 are in
// the lake once; files at or before the committed position stay.
func TestResumeRemovesWhatAnUncommittedFlushWrote(t *testing.T) {
	for _, store := range []string{"file", "s3"} {
		t.Run(store, func(t *testing.T) {
			url, s3cfg, read := resumeLake(t, store)
			s := record.NewSchema("api", "items", []record.Column{{Name: "id", Type: typ(record.KindInt64), Key: true}, {Name: "v", Type: typ(record.KindString)}})
			rec := func(n int, v string) record.Record {
				return record.Record{Op: record.OpUpdate, Schema: s, Pos: pos8(uint64(n)), After: []record.Value{int64(n), v},
					CommitTS: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
			}
			ctx := context.Background()
			d := openURL(t, url, "resume", s3cfg)
			if err := d.Write(ctx, []record.Record{rec(1, "a"), rec(2, "b")}); err != nil {
				t.Fatal(err)
			}
			if err := d.Flush(ctx); err != nil { // committed at position 2
				t.Fatal(err)
			}
			if err := d.Write(ctx, []record.Record{rec(11, "old"), rec(12, "x"), rec(13, "y")}); err != nil {
				t.Fatal(err)
			}
			if err := d.Flush(ctx); err != nil { // its commit is lost
				t.Fatal(err)
			}
			_ = d.Close(ctx)

			d = openURL(t, url, "resume", s3cfg)
			if err := d.Resume(ctx, pos8(2)); err != nil {
				t.Fatal(err)
			}
			if err := d.Write(ctx, []record.Record{rec(12, "x"), rec(13, "y"), rec(14, "new")}); err != nil {
				t.Fatal(err)
			}
			if err := d.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			_ = d.Close(ctx)
			got := read(t)
			want := []string{"1 a", "2 b", "12 x", "13 y", "14 new"}
			if !slices.Equal(got, want) {
				t.Fatalf("lake holds %v, want %v", got, want)
			}
		})
	}
}

// resumeLake is a lake of the given store and a reader of its rows with DuckDB.
func resumeLake(t *testing.T, store string) (string, S3, func(*testing.T) []string) {
	t.Helper()
	if store == "file" {
		dir := t.TempDir()
		return "file://" + dir, S3{}, func(t *testing.T) []string {
			return lakeRows(t, lakedb.ParquetTree(dir+"/api/items"))
		}
	}
	srv := startS3(t)
	bucket := makeBucket(t, srv)
	return "s3://" + bucket + "/lake", s3Config(srv), func(t *testing.T) []string {
		dir := t.TempDir()
		if err := srv.Download(context.Background(), bucket, "lake/", dir); err != nil {
			t.Fatal(err)
		}
		return lakeRows(t, lakedb.ParquetTree(dir+"/lake/api/items"))
	}
}

func lakeRows(t *testing.T, tree string) []string {
	t.Helper()
	var out []string
	for _, r := range queryStrings(t, lakedb.DuckDB(t), "SELECT CAST(id AS VARCHAR), v FROM "+tree+" ORDER BY _pos") {
		out = append(out, fmt.Sprintf("%s %s", r[0], r[1]))
	}
	return out
}
