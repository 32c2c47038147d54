// Command warehouse measures the database destinations' loading: records merged and
// appended into PostgreSQL by the postgres destination, next to a plain COPY of the
// same rows into an empty table (the physical limit of this server for those rows),
// in one run on one machine; and the duckdb destination into a DuckDB file, next to
// DuckDB reading the same rows from a Parquet file into an empty table. It drives the
// destinations in-process, without a source, so the figures are the loading alone.
// Run it from the repository root, with the tag the duckdb destination loads through
// (-duckdb-only skips PostgreSQL):
//
//	go run -tags duckdb_arrow ./bench/warehouse -rows 1000000
package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connectd/connectd/bench/internal/proc"
	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/duckdb"
	pgdest "github.com/connectd/connectd/destinations/postgres"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "rows per phase")
	batch := flag.Int("batch", 1000, "records per Write (a source's batch)")
	flush := flag.Int("flush", 1_000_000, "records per flush (flush.rows)")
	keep := flag.Bool("keep", false, "leave the server running at the end (its DSN is logged)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	duckOnly := flag.Bool("duckdb-only", false, "run the duckdb phases only, without PostgreSQL")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*rows, *batch, *flush, *keep, *duckOnly); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+"  "+format+"\n", args...)
}

// result is one phase: rows loaded in wall time, with the CPU of this process
// (connectd's side) and of the server's backend.
type result struct {
	name           string
	rows           int
	wall           time.Duration
	flushing       time.Duration // of wall, in FlushAt
	client, server time.Duration
	vs             *result // the baseline it is compared with
	vsAll          *result // the baseline with the metadata columns too
}

var schema = record.NewSchema("shop", "items", []record.Column{
	{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
	{Name: "customer", SourceType: "integer", Type: record.Type{Kind: record.KindInt32}},
	{Name: "qty", SourceType: "smallint", Type: record.Type{Kind: record.KindInt16}},
	{Name: "price", SourceType: "numeric(12,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}},
	{Name: "status", SourceType: "text", Type: record.Type{Kind: record.KindString}},
	{Name: "note", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
	{Name: "created", SourceType: "timestamptz", Type: record.Type{Kind: record.KindTimestampTZ}},
	{Name: "updated", SourceType: "timestamptz", Type: record.Type{Kind: record.KindTimestampTZ}},
})

var statuses = []string{"new", "paid", "shipped", "returned"}

// records are n changes of op to rows 1..n, at positions after from.
func records(n int, op record.Op, from uint64, version int) []record.Record {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]record.Record, n)
	for i := range out {
		id := int64(i + 1)
		ts := record.TimestampOf(base.Add(time.Duration(i) * time.Second))
		out[i] = record.Record{Op: op, Schema: schema, Pos: binary.BigEndian.AppendUint64(nil, from+uint64(i)+1),
			CommitTS: base.Add(time.Duration(i) * time.Millisecond), TxID: fmt.Sprint(i / 100),
			After: []record.Value{id, int32(i % 50000), int16(i%20 + version), record.Decimal(fmt.Sprintf("%d.%02d", i%100000, i%100)),
				statuses[(i+version)%len(statuses)], fmt.Sprintf("note %d for item %d, version %d", i%977, id, version), ts, ts + record.Timestamp(version)}}
	}
	return out
}

func run(n, batch, flush int, keep, duckOnly bool) error {
	ctx := context.Background()
	if duckOnly {
		logf("generating %d records", n)
		ducks, err := duckPhases(ctx, records(n, record.OpRead, 0, 0), records(n, record.OpUpdate, uint64(n), 1), batch, flush)
		if err != nil {
			return err
		}
		report(ducks)
		return nil
	}
	logf("starting a PostgreSQL server")
	pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WalLevel: "replica", ExtraConf: map[string]string{
		"shared_buffers": "'512MB'", "max_wal_size": "'4GB'", "checkpoint_timeout": "'30min'",
	}})
	if err != nil {
		return err
	}
	if keep {
		logf("the server stays up: %s (stop it with: %s/pg_ctl -D %s/data stop)", pg.DSN, pg.BinDir, pg.Dir)
	} else {
		defer pg.Stop()
	}
	logf("generating %d records", n)
	inserts := records(n, record.OpRead, 0, 0)
	updates := records(n, record.OpUpdate, uint64(n), 1)

	var res []*result
	var base [4]*result // keyed source, keyed as merged, unkeyed source, unkeyed as appended
	for i, b := range []struct {
		keyed bool
		shape int
	}{{true, sourceOnly}, {true, asMerged}, {false, sourceOnly}, {false, asAppended}} {
		if base[i], err = plainCopy(ctx, pg, inserts, b.keyed, b.shape); err != nil {
			return err
		}
	}
	res = append(res, base[:]...)
	for _, p := range []struct {
		mode, name string
		recs       []record.Record
		vs, vsAll  *result
	}{
		{"merge", "merge: inserts into an empty table", inserts, base[0], base[1]},
		{"merge", "merge: updates of every row", updates, base[0], base[1]},
		{"append", "append", inserts, base[2], base[3]},
	} {
		r, err := load(ctx, pg, p.mode, p.name, p.recs, batch, flush, p.vs)
		if err != nil {
			return err
		}
		r.vsAll = p.vsAll
		res = append(res, r)
	}
	ducks, err := duckPhases(ctx, inserts, updates, batch, flush)
	if err != nil {
		return err
	}
	res = append(res, ducks...)
	report(res)
	return nil
}

// duckPhases loads the rows into DuckDB files with the duckdb destination (merge, then
// append), then times DuckDB reading the same rows from a Parquet file (written by
// DuckDB from the merged table before the clock starts) into an empty table.
func duckPhases(ctx context.Context, recs, updates []record.Record, batch, flush int) ([]*result, error) {
	dir, err := os.MkdirTemp("", "connectd-bench-duckdb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var out []*result
	for _, mode := range []string{"merge", "append"} {
		cfg := &duckdb.Config{Path: filepath.Join(dir, mode+".duckdb"), Schema: "main", Table: "{table}", Mode: mode}
		dc := config.Destination{Type: "duckdb", Config: cfg}
		name := "duckdb " + mode
		if mode == "merge" {
			name = "duckdb merge: inserts into an empty table"
		}
		r, err := drive(ctx, duckdb.Kind{}, dc, name, recs, batch, flush, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if mode == "merge" {
			r, err := drive(ctx, duckdb.Kind{}, dc, "duckdb merge: updates of every row", updates, batch, flush, nil)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	db, err := sql.Open("duckdb", filepath.Join(dir, "read.duckdb"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	pq := filepath.Join(dir, "items.parquet")
	if _, err := db.ExecContext(ctx, fmt.Sprintf("ATTACH '%s' AS m (READ_ONLY); COPY (SELECT id, customer, qty, price, status, note, created, updated FROM m.main.items) TO '%s' (FORMAT parquet); DETACH m",
		filepath.Join(dir, "merge.duckdb"), pq)); err != nil {
		return nil, fmt.Errorf("write the parquet file: %w", err)
	}
	base := &result{name: "DuckDB: CREATE TABLE AS read_parquet of the rows"}
	cli0, t0 := proc.Self(), time.Now()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE items AS SELECT * FROM read_parquet('%s'); CHECKPOINT", pq)); err != nil {
		return nil, err
	}
	base.wall, base.client = time.Since(t0), proc.Self()-cli0
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM items").Scan(&base.rows); err != nil {
		return nil, err
	}
	for _, r := range out {
		r.vs = base
	}
	return append([]*result{base}, out...), nil
}

// Shapes of the baseline's table: the source's columns only, or with the metadata
// columns the destination adds (merge: _pos, _commit_ts; append: _op, _pos,
// _commit_ts, _txid, _unchanged), which are part of what it has to write.
const (
	sourceOnly = iota
	asMerged
	asAppended
)

// plainCopy is the baseline: the same rows, rendered as COPY text before the clock
// starts, copied into an empty table with the same columns (and the same primary key
// when keyed), best of three.
func plainCopy(ctx context.Context, pg *testenv.Postgres, recs []record.Record, keyed bool, shape int) (*result, error) {
	name, key := "plain COPY, no key", ""
	if keyed {
		name, key = "plain COPY, keyed", ", PRIMARY KEY (id)"
	}
	cols := "id bigint NOT NULL, customer integer, qty smallint, price numeric(12,2), status text, note text, created timestamptz, updated timestamptz"
	switch shape {
	case sourceOnly:
		name += ", source columns"
	case asMerged:
		name += ", as merge writes them"
		cols += `, _pos text COLLATE "C", _commit_ts timestamptz`
	case asAppended:
		name += ", as append writes them"
		cols += `, _op text, _pos text COLLATE "C", _commit_ts timestamptz, _txid text, _unchanged text[]`
	}
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var text strings.Builder
	for i := range recs {
		r := &recs[i]
		a := r.After
		fmt.Fprintf(&text, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s", a[0], a[1], a[2], a[3], a[4], a[5], stamp(a[6]), stamp(a[7]))
		commit := stamp(record.TimestampOf(r.CommitTS))
		switch shape {
		case asMerged:
			fmt.Fprintf(&text, "\t%s\t%s", r.Pos, commit)
		case asAppended:
			fmt.Fprintf(&text, "\t%s\t%s\t%s\t%s\t\\N", r.Op, r.Pos, commit, r.TxID)
		}
		text.WriteByte('\n')
	}
	data := text.String()
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS copy_target; CREATE TABLE copy_target ("+cols+key+")"); err != nil {
		return nil, err
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return nil, err
	}
	var best *result
	for range 3 {
		if _, err := conn.Exec(ctx, "TRUNCATE copy_target; CHECKPOINT"); err != nil {
			return nil, err
		}
		srv0, _ := proc.CPU(pid)
		cli0, t0 := proc.Self(), time.Now()
		tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(data), "COPY copy_target FROM STDIN")
		if err != nil {
			return nil, err
		}
		r := &result{name: name, rows: int(tag.RowsAffected()), wall: time.Since(t0), client: proc.Self() - cli0}
		srv1, _ := proc.CPU(pid)
		r.server = srv1 - srv0
		if best == nil || r.wall < best.wall {
			best = r
		}
	}
	logf("%s: %d rows in %s", name, best.rows, best.wall.Round(time.Millisecond))
	return best, nil
}

func stamp(v record.Value) string {
	return v.(record.Timestamp).Time().Format("2006-01-02 15:04:05.999999+00")
}

// load drives the postgres destination, and measures its server backend too.
func load(ctx context.Context, pg *testenv.Postgres, mode, name string, recs []record.Record, batch, flush int, vs *result) (*result, error) {
	cfg := &pgdest.Config{DSN: pg.DSN, Schema: "bench_" + mode, Table: "{table}", Mode: mode}
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, err
	}
	pid := 0
	backend := func() error {
		return conn.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = 'connectd' AND datname = current_database()").Scan(&pid)
	}
	var srv0 time.Duration
	r, err := drive(ctx, pgdest.Kind{}, config.Destination{Type: "postgres", Config: cfg}, name, recs, batch, flush, func() {
		if backend() == nil {
			srv0, _ = proc.CPU(pid)
		}
	})
	if err != nil {
		return nil, err
	}
	srv1, _ := proc.CPU(pid)
	r.server, r.vs = srv1-srv0, vs
	return r, nil
}

// drive runs a destination as the runtime does: Write in batches, FlushAt every flush
// records and at the end. opened runs once the destination is open, before the clock.
func drive(ctx context.Context, k connector.DestinationKind, dc config.Destination, name string, recs []record.Record, batch, flush int, opened func()) (*result, error) {
	p := connector.DestinationParams{Name: "bench", Config: dc,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	d, err := k.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer d.Close(ctx)
	t := d.(connector.Transactional)
	if opened != nil {
		opened()
	}
	cli0, t0 := proc.Self(), time.Now()
	pending := 0
	var flushing time.Duration
	for i := 0; i < len(recs); i += batch {
		b := recs[i:min(i+batch, len(recs))]
		if err := d.Write(ctx, b); err != nil {
			return nil, err
		}
		if pending += len(b); pending >= flush || i+batch >= len(recs) {
			f0 := time.Now()
			if err := t.FlushAt(ctx, b[len(b)-1].Pos); err != nil {
				return nil, err
			}
			flushing += time.Since(f0)
			pending = 0
		}
	}
	r := &result{name: name, rows: len(recs), wall: time.Since(t0), flushing: flushing, client: proc.Self() - cli0}
	logf("%s: %d rows in %s", name, r.rows, r.wall.Round(time.Millisecond))
	return r, nil
}

func report(res []*result) {
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trows\tseconds\tin flush\trows/s\tof COPY\tof COPY as written\tconnectd CPU-s/M rows\tserver CPU-s/M rows\t")
	for _, r := range res {
		ratio := ""
		if r.vs != nil {
			ratio = fmt.Sprintf("%.2f", r.vs.wall.Seconds()/r.wall.Seconds())
		}
		perM := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/float64(r.rows)*1e6) }
		ratioAll := ""
		if r.vsAll != nil {
			ratioAll = fmt.Sprintf("%.2f", r.vsAll.wall.Seconds()/r.wall.Seconds())
		}
		inFlush := ""
		if r.vs != nil {
			inFlush = fmt.Sprintf("%.2f", r.flushing.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%.0f\t%s\t%s\t%s\t%s\t\n", r.name, r.rows, r.wall.Seconds(), inFlush, float64(r.rows)/r.wall.Seconds(), ratio, ratioAll, perM(r.client), perM(r.server))
	}
	tw.Flush()
}
