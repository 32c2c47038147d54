package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// The target server. It needs no logical replication, but the tests share the
// project's one way of starting a server.
var sharedPG = testenv.SharedPostgres(testenv.PostgresOptions{})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedPG.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var schemaSeq atomic.Int64

// target is a fresh schema on the shared server and a query connection to it.
type target struct {
	dsn    string
	schema string
	db     *pgx.Conn
}

func newTarget(t testing.TB) *target {
	t.Helper()
	pg := sharedPG.Get(t)
	ctx := testCtx(t)
	db, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return &target{dsn: pg.DSN, schema: fmt.Sprintf("t%d", schemaSeq.Add(1)), db: db}
}

func (tg *target) config(mode string, soft bool) *Config {
	return &Config{DSN: tg.dsn, Schema: tg.schema, Table: "{table}", Mode: mode, SoftDelete: soft}
}

func (tg *target) open(t testing.TB, name string, cfg *Config) connector.Destination {
	t.Helper()
	d, err := Kind{}.Open(testCtx(t), params(name, cfg))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func params(name string, cfg *Config) connector.DestinationParams {
	return connector.DestinationParams{Name: name, Config: config.Destination{Type: "postgres", Config: cfg},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("connector", name)}
}

// rows returns a query's rows as text, NULL as "NULL".
func (tg *target) rows(t testing.TB, q string, args ...any) [][]string {
	t.Helper()
	r, err := tg.db.Query(testCtx(t), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	var out [][]string
	for r.Next() {
		vals, err := r.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}
