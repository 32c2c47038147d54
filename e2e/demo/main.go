// Command demo shows connectd end to end on a fresh machine: it starts a throwaway
// PostgreSQL (logical replication) and an S3-compatible server in a temp directory,
// loads sample data, runs `connectd sync` twice (snapshot, then the changes made since)
// into s3://lake/raw, prints the Parquet tree and rows read back with DuckDB, and
// cleans everything up. Run it with `make demo`.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // reads the lake back, independently of our writer

	"github.com/connectd/connectd/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := demo(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func demo(ctx context.Context) error {
	tmp, err := os.MkdirTemp("", "connectd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	step("building connectd")
	bin := filepath.Join(tmp, "connectd")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/connectd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/connectd (run the demo from the repository root): %w", err)
	}

	step("starting a throwaway PostgreSQL (wal_level=logical) and S3 server")
	pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	if err != nil {
		return err
	}
	defer pg.Stop()
	s3, err := testenv.StartS3(ctx)
	if err != nil {
		return err
	}
	defer s3.Stop()
	if err := s3.CreateBucket(ctx, "lake"); err != nil {
		return err
	}
	fmt.Printf("    postgres %s\n    s3       %s (bucket lake)\n", pg.DSN, s3.Endpoint)

	step("loading sample data: shop.customers (1,000 rows), shop.orders (20,000 rows)")
	if err := pg.Exec(ctx, sampleSchema); err != nil {
		return fmt.Errorf("load sample data: %w", err)
	}

	cfgPath := filepath.Join(tmp, "connectd.yaml")
	cfg := fmt.Sprintf(configTemplate, filepath.Join(tmp, "offsets"), pg.DSN, s3.Endpoint, s3.Region, s3.AccessKey, s3.SecretKey)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	fmt.Printf("\n%s", indent(cfg))

	step("connectd check")
	if err := connectd(ctx, bin, "check", "-c", cfgPath); err != nil {
		return err
	}
	step("connectd sync  (initial snapshot)")
	if err := connectd(ctx, bin, "sync", "-c", cfgPath, "--log-format", "text"); err != nil {
		return err
	}

	step("changing the source: 200 inserts, 100 updates, 50 deletes, one new column")
	if err := pg.Exec(ctx, sampleChanges); err != nil {
		return fmt.Errorf("apply changes: %w", err)
	}
	step("connectd sync  (streams only what changed)")
	if err := connectd(ctx, bin, "sync", "-c", cfgPath, "--log-format", "text"); err != nil {
		return err
	}
	step("connectd offsets list")
	if err := connectd(ctx, bin, "offsets", "list", "-c", cfgPath); err != nil {
		return err
	}

	lake := filepath.Join(tmp, "lake")
	if err := s3.Download(ctx, "lake", "raw/", lake); err != nil {
		return err
	}
	step("the lake: s3://lake/raw")
	if err := printTree(lake); err != nil {
		return err
	}
	step("read back with DuckDB")
	return readBack(filepath.Join(lake, "raw"))
}

// connectd runs the binary with the demo's output attached.
func connectd(ctx context.Context, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("connectd %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func printTree(root string) error {
	var files []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, fmt.Sprintf("    %-90s %8d bytes", rel, info.Size()))
		}
		return nil
	})
	sort.Strings(files)
	fmt.Println(strings.Join(files, "\n"))
	return err
}

func readBack(root string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	for _, table := range []string{"customers", "orders"} {
		glob := filepath.Join(root, "shop", table, "**", "*.parquet")
		src := fmt.Sprintf("read_parquet('%s', hive_partitioning = true, union_by_name = true)", glob)
		fmt.Printf("\n  shop.%s, records by operation:\n", table)
		if err := query(db, "SELECT _op, count(*) AS records FROM "+src+" GROUP BY _op ORDER BY _op"); err != nil {
			return err
		}
		if table == "orders" {
			fmt.Printf("\n  shop.orders, the last five changes:\n")
			if err := query(db, "SELECT _op, _pos, _commit_ts, id, customer_id, total, status, coupon FROM "+src+" ORDER BY _pos DESC LIMIT 5"); err != nil {
				return err
			}
			fmt.Printf("\n  shop.orders rebuilt from the change log (latest _pos per key, deletes dropped):\n")
			if err := query(db, `SELECT count(*) AS live_rows, sum(total) AS sum_total FROM (
				SELECT * FROM `+src+` QUALIFY row_number() OVER (PARTITION BY id ORDER BY _pos DESC) = 1) WHERE _op <> 'd'`); err != nil {
				return err
			}
		}
	}
	return nil
}

func query(db *sql.DB, q string) error {
	rows, err := db.Query(q)
	if err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    "+strings.Join(cols, "\t"))
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				cells[i] = "NULL"
			case time.Time:
				cells[i] = x.UTC().Format("2006-01-02 15:04:05.000000Z")
			default:
				cells[i] = fmt.Sprint(x)
			}
		}
		fmt.Fprintln(tw, "    "+strings.Join(cells, "\t"))
	}
	tw.Flush()
	return rows.Err()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

const configTemplate = `offsets: file://%s
connectors:
  shop:
    source:
      type: postgres
      dsn: %s
      tables: ["shop.*"]
      snapshot: initial
    destination:
      type: parquet
      url: s3://lake/raw
      s3: {endpoint: "%s", region: %s, path_style: true, access_key_id: %s, secret_access_key: %s}
      flush: {rows: 100000, bytes: 64MiB, interval: 10s}
`

const sampleSchema = `
CREATE SCHEMA shop;
CREATE TYPE shop.tier AS ENUM ('bronze', 'silver', 'gold');
CREATE TABLE shop.customers (
  id         integer PRIMARY KEY,
  name       text NOT NULL,
  email      varchar(120),
  tier       shop.tier NOT NULL DEFAULT 'bronze',
  created_at timestamptz NOT NULL
);
CREATE TABLE shop.orders (
  id          bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES shop.customers,
  total       numeric(12,2) NOT NULL,
  status      text NOT NULL,
  items       jsonb,
  tags        text[],
  placed_at   timestamptz NOT NULL,
  ship_by     date
);
INSERT INTO shop.customers
SELECT i, 'customer ' || i, 'c' || i || '@example.com',
       (ARRAY['bronze','silver','gold'])[1 + i % 3]::shop.tier,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '37 minutes'
FROM generate_series(1, 1000) AS i;
INSERT INTO shop.orders
SELECT i, 1 + i % 1000, round((i * 7.31) % 1000 + 0.99, 2), 'placed',
       jsonb_build_object('sku', 'SKU-' || (i % 97), 'qty', 1 + i % 5),
       ARRAY['web', CASE WHEN i % 2 = 0 THEN 'promo' END],
       timestamptz '2026-06-01 00:00:00+00' + i * interval '3 minutes',
       date '2026-06-05' + (i % 30)
FROM generate_series(1, 20000) AS i;
`

const sampleChanges = `
INSERT INTO shop.orders
SELECT i, 1 + i % 1000, 19.99, 'placed', '{"sku":"SKU-NEW","qty":1}', ARRAY['app'], now(), current_date + 3
FROM generate_series(20001, 20200) AS i;
UPDATE shop.orders SET status = 'shipped' WHERE id <= 100;
DELETE FROM shop.orders WHERE id BETWEEN 101 AND 150;
ALTER TABLE shop.orders ADD COLUMN coupon text;
UPDATE shop.orders SET coupon = 'WELCOME10', total = total - 1.00 WHERE id BETWEEN 20001 AND 20010;
`
