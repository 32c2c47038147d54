package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/destinations/parquet"
	"github.com/connectd/connectd/plugins/host"
	"github.com/connectd/connectd/sources/mysql"
	"github.com/connectd/connectd/sources/postgres"
)

// env returns a lookup function over a fixed set of variables.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// errLines parses src as c.yaml and returns every reported problem, one string each.
func errLines(t *testing.T, src string, lookup func(string) (string, bool)) []string {
	t.Helper()
	_, err := parse("c.yaml", []byte(src), lookup)
	if err == nil {
		return nil
	}
	var es config.Errors
	if errors.As(err, &es) {
		return strings.Split(es.Error(), "\n")
	}
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse returned %T %v, want *config.Error or config.Errors", err, err)
	}
	return []string{e.Error()}
}

const validPostgres = `offsets: file:///var/lib/connectd
connectors:
  orders:
    source:
      type: postgres
      dsn: postgres://u@h:5432/db
      tables: [public.orders]
    destination:
      type: parquet
      url: file:///data/lake
`

func TestValidConfigGetsDefaults(t *testing.T) {
	cfg, err := parse("c.yaml", []byte(validPostgres), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors["orders"]
	if c == nil || c.Line != 3 || !reflect.DeepEqual(cfg.Order, []string{"orders"}) {
		t.Fatalf("connector = %+v, order %q", c, cfg.Order)
	}
	want := &postgres.Config{
		DSN:           "postgres://u@h:5432/db",
		Tables:        []string{"public.orders"},
		Slot:          "connectd_orders",
		Publication:   "connectd_orders",
		Snapshot:      "initial",
		SnapshotChunk: 20000,
		Discovery:     30 * time.Second,
	}
	if !reflect.DeepEqual(pgOf(c.Source), want) || c.Source.Type != "postgres" || myOf(c.Source) != nil || pluginOf(c.Source.Config) != nil {
		t.Fatalf("source = %+v / %+v", c.Source, pgOf(c.Source))
	}
	d := c.Destination
	if d.Type != "parquet" || parquetOf(d) == nil || parquetOf(d).Compression != "zstd" || parquetOf(d).URL != "file:///data/lake" {
		t.Fatalf("destination = %+v %+v", d, parquetOf(d))
	}
	if d.Flush != (config.Flush{Rows: 1000000, Bytes: 128 << 20, Interval: 60 * time.Second}) {
		t.Fatalf("flush = %+v", d.Flush)
	}
	if cfg.Server.Listen != "" || cfg.Offsets != "file:///var/lib/connectd" || cfg.Path != "c.yaml" {
		t.Fatalf("config = %+v", cfg)
	}
}

func TestDefaultSlotSanitizesName(t *testing.T) {
	src := strings.Replace(validPostgres, "  orders:", "  Orders-EU:", 1)
	cfg, err := parse("c.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := pgOf(cfg.Connectors["Orders-EU"].Source)
	if ps.Slot != "connectd_orders_eu" || ps.Publication != "connectd_orders_eu" {
		t.Fatalf("slot %q publication %q", ps.Slot, ps.Publication)
	}
}

func TestEveryKeyDecodes(t *testing.T) {
	src := `offsets: file://state
server: {listen: "127.0.0.1:8083"}
plugins: {dir: /usr/lib/connectd}
connectors:
  pg:
    source:
      type: postgres
      dsn: host=db port=5432 dbname=app password='a b\'c'
      password: 12345
      tables: [public.orders, "public.line_?"]
      slot: s1
      publication: p1
      snapshot: never
      heartbeat: 1m30s
      discovery: 5s
      snapshot_chunk: 5000
    destination:
      type: parquet
      url: s3://lake/raw/x
      s3:
        endpoint: https://minio:9000
        region: eu-west-1
        path_style: true
        access_key_id: AK
        secret_access_key: SK
      compression: snappy
      flush: {rows: 10, bytes: 1.5KiB, interval: 2s}
  my:
    source:
      type: mysql
      dsn: mysql://repl:pw@127.0.0.1:3306/
      password: other
      server_id: 5401
      tables: ["shop.*"]
      snapshot: initial_only
    destination:
      type: plugin
      name: duck
      sha256: ` + strings.Repeat("aB", 32) + `
      config: {file: /tmp/x.db, n: 3, list: [1, two], nested: {ok: true}}
  plug:
    source:
      type: plugin
      path: /opt/src
      config:
    destination: {type: parquet, url: "file:///lake"}
`
	cfg, err := parse("/etc/connectd/c.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Order, []string{"pg", "my", "plug"}) {
		t.Fatalf("order %q", cfg.Order)
	}
	if cfg.Offsets != "file:///etc/connectd/state" {
		t.Fatalf("relative offsets not anchored to the config's directory: %q", cfg.Offsets)
	}
	if cfg.Plugins.Dir != "/usr/lib/connectd" || cfg.Server.Listen != "127.0.0.1:8083" {
		t.Fatalf("top level = %+v", cfg)
	}
	pg := cfg.Connectors["pg"]
	wantPG := &postgres.Config{
		DSN: `host=db port=5432 dbname=app password='a b\'c'`, Password: "12345",
		Tables: []string{"public.orders", "public.line_?"}, Slot: "s1", Publication: "p1",
		Snapshot: "never", Heartbeat: 90 * time.Second, SnapshotChunk: 5000, Discovery: 5 * time.Second,
	}
	if !reflect.DeepEqual(pgOf(pg.Source), wantPG) {
		t.Fatalf("postgres = %+v", pgOf(pg.Source))
	}
	wantPQ := &parquet.Config{URL: "s3://lake/raw/x", Compression: "snappy", S3: parquet.S3{
		Endpoint: "https://minio:9000", Region: "eu-west-1", PathStyle: true, AccessKeyID: "AK", SecretAccessKey: "SK"}}
	if !reflect.DeepEqual(parquetOf(pg.Destination), wantPQ) {
		t.Fatalf("parquet = %+v", parquetOf(pg.Destination))
	}
	if pg.Destination.Flush != (config.Flush{Rows: 10, Bytes: 1536, Interval: 2 * time.Second}) {
		t.Fatalf("flush = %+v", pg.Destination.Flush)
	}
	my := cfg.Connectors["my"]
	wantMy := &mysql.Config{DSN: "mysql://repl:pw@127.0.0.1:3306/", Password: "other", ServerID: 5401,
		Tables: []string{"shop.*"}, Snapshot: "initial_only"}
	if !reflect.DeepEqual(myOf(my.Source), wantMy) {
		t.Fatalf("mysql = %+v", myOf(my.Source))
	}
	wantPlugin := &host.Config{Name: "duck", SHA256: strings.Repeat("aB", 32), Config: map[string]any{
		"file": "/tmp/x.db", "n": uint64(3), "list": []any{uint64(1), "two"}, "nested": map[string]any{"ok": true}}}
	if !reflect.DeepEqual(pluginOf(my.Destination.Config), wantPlugin) {
		t.Fatalf("plugin = %#v", pluginOf(my.Destination.Config))
	}
	if p := pluginOf(cfg.Connectors["plug"].Source.Config); p == nil || p.Path != "/opt/src" || p.Config != nil {
		t.Fatalf("plugin source = %+v", p)
	}
}

func TestAnchorsAliasesAndMergeKeys(t *testing.T) {
	src := `offsets: file:///s
x-dest: &dest
  type: parquet
  url: file:///lake
  compression: gzip
connectors:
  a:
    source: &src {type: postgres, dsn: "postgres://h/db", tables: [public.a]}
    destination: *dest
  b:
    source:
      <<: *src
      tables: [public.b]
    destination:
      <<: *dest
      url: file:///lake2
      compression: none
`
	_, err := parse("c.yaml", []byte(src), nil)
	want := "c.yaml:2: x-dest: unknown key"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want %s...", err, want)
	}
	src = strings.Replace(src, "x-dest: &dest\n  type: parquet\n  url: file:///lake\n  compression: gzip\n", "", 1)
	src = strings.Replace(src, "    destination: *dest", "    destination: &dest {type: parquet, url: \"file:///lake\", compression: gzip}", 1)
	cfg, err := parse("c.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Connectors["b"]
	if pgOf(b.Source).DSN != "postgres://h/db" || !reflect.DeepEqual(pgOf(b.Source).Tables, []string{"public.b"}) {
		t.Fatalf("merged source = %+v", pgOf(b.Source))
	}
	if parquetOf(b.Destination).URL != "file:///lake2" || b.Destination.Type != "parquet" || parquetOf(b.Destination).Compression != "none" {
		t.Fatalf("merged destination = %+v", parquetOf(b.Destination))
	}
	if parquetOf(cfg.Connectors["a"].Destination).Compression != "gzip" {
		t.Fatalf("aliased destination = %+v", parquetOf(cfg.Connectors["a"].Destination))
	}
}

func TestRules(t *testing.T) {
	// Each case edits validPostgres (old -> new) and lists every expected error line.
	cases := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"unknown key suggests", "      tables:", "      slott: x\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.slott: unknown key (did you mean "slot"?)`}},
		{"unknown key lists known", "offsets:", "zzz: 1\noffsets:",
			[]string{`c.yaml:1: zzz: unknown key (known keys: connectors, offsets, plugins, server)`}},
		{"key of another type", "      tables:", "      server_id: 3\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.server_id: unknown key for type postgres (it belongs to type mysql)`}},
		{"key of another destination type", "      url: file:///data/lake", "      url: file:///data/lake\n      sha256: x",
			[]string{`c.yaml:11: connectors.orders.destination.sha256: unknown key for type parquet (it belongs to type plugin)`}},
		{"unknown source type", "type: postgres", "type: oracle",
			[]string{`c.yaml:5: connectors.orders.source.type: unknown type "oracle": known types are postgres, mysql, http, plugin`}},
		{"unknown destination type", "type: parquet", "type: kafka",
			[]string{`c.yaml:9: connectors.orders.destination.type: unknown type "kafka": known types are parquet, postgres, duckdb, plugin`}},
		{"misspelt type", "      type: postgres", "      typ: postgres",
			[]string{
				`c.yaml:4: connectors.orders.source.type: required: one of postgres, mysql, http, plugin`,
				`c.yaml:5: connectors.orders.source.typ: unknown key (did you mean "type"?)`,
			}},
		{"misspelt flush", "      url: file:///data/lake", "      url: file:///data/lake\n      flsuh: {rows: 1}",
			[]string{`c.yaml:11: connectors.orders.destination.flsuh: unknown key (did you mean "flush"?)`}},
		{"missing type", "      type: postgres\n", "",
			[]string{`c.yaml:4: connectors.orders.source.type: required: one of postgres, mysql, http, plugin`}},
		{"bad connector name", "  orders:", "  or.ders:",
			[]string{`c.yaml:3: connectors.or.ders: connector name must match [a-zA-Z0-9_-]+`}},
		{"slot charset", "      tables:", "      slot: Orders\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.slot: must match [a-z0-9_]+`}},
		{"slot length", "      tables:", "      slot: " + strings.Repeat("s", 64) + "\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.slot: must be at most 63 characters (PostgreSQL's limit), got 64`}},
		{"publication charset", "      tables:", "      publication: pub-1\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.publication: must match [a-z0-9_]+`}},
		{"default slot too long", "  orders:", "  " + strings.Repeat("o", 55) + ":",
			[]string{
				`c.yaml:4: connectors.` + strings.Repeat("o", 55) + `.source.slot: the default "connectd_` + strings.Repeat("o", 55) + `" is longer than 63 characters; set slot explicitly`,
				`c.yaml:4: connectors.` + strings.Repeat("o", 55) + `.source.publication: the default "connectd_` + strings.Repeat("o", 55) + `" is longer than 63 characters; set publication explicitly`,
			}},
		{"snapshot mode", "      tables:", "      snapshot: always\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.snapshot: must be one of initial, initial_only, never, when_needed; got "always"`}},
		{"tables missing", "      tables: [public.orders]\n", "",
			[]string{`c.yaml:4: connectors.orders.source.tables: required: the tables to capture, e.g. [public.orders, "public.line_*"]`}},
		{"tables empty", "[public.orders]", "[]",
			[]string{`c.yaml:7: connectors.orders.source.tables: must list at least one table`}},
		{"tables not a list", "[public.orders]", "public.orders",
			[]string{`c.yaml:7: connectors.orders.source.tables: must be a list, e.g. [public.orders], got a string`}},
		{"table without schema", "[public.orders]", "\n        - public.orders\n        - orders\n        - a.b.c\n        - public.orders",
			[]string{
				`c.yaml:9: connectors.orders.source.tables[1]: must be schema.table (globs * and ? allowed), got "orders"`,
				`c.yaml:10: connectors.orders.source.tables[2]: must be schema.table (globs * and ? allowed), got "a.b.c"`,
				`c.yaml:11: connectors.orders.source.tables[3]: "public.orders" is listed twice`,
			}},
		{"dsn missing", "      dsn: postgres://u@h:5432/db\n", "",
			[]string{`c.yaml:4: connectors.orders.source.dsn: required: postgres://user@host:5432/db or host=... dbname=...`}},
		{"dsn garbage", "postgres://u@h:5432/db", "not a dsn",
			[]string{`c.yaml:6: connectors.orders.source.dsn: must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...)`}},
		{"dsn bad url keeps password out", "postgres://u@h:5432/db", "postgres://u:secret@h:54x32/db",
			[]string{`c.yaml:6: connectors.orders.source.dsn: must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...): invalid port ":54x32" after host`}},
		{"dsn key=value unterminated", "postgres://u@h:5432/db", "\"host=h password='abc\"",
			[]string{`c.yaml:6: connectors.orders.source.dsn: must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...): unterminated quoted value of password`}},
		{"lake url relative", "file:///data/lake", "file://data/lake",
			[]string{`c.yaml:10: connectors.orders.destination.url: must be file:///absolute/path or s3://bucket/prefix: "data/lake" is not an absolute path (file:// is followed by /path, so three slashes)`}},
		{"lake url scheme", "file:///data/lake", "gs://bucket/x",
			[]string{`c.yaml:10: connectors.orders.destination.url: must be file:///absolute/path or s3://bucket/prefix, got "gs://bucket/x"`}},
		{"lake bucket", "file:///data/lake", "s3://My_Bucket/x",
			[]string{`c.yaml:10: connectors.orders.destination.url: must be file:///absolute/path or s3://bucket/prefix: "My_Bucket" is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')`}},
		{"lake url missing", "      url: file:///data/lake\n", "",
			[]string{`c.yaml:8: connectors.orders.destination.url: required: file:///path/to/lake or s3://bucket/prefix`}},
		{"s3 endpoint", "      url: file:///data/lake", "      url: s3://lake\n      s3: {endpoint: minio:9000}",
			[]string{`c.yaml:11: connectors.orders.destination.s3.endpoint: must be an http:// or https:// URL, e.g. http://127.0.0.1:9000, got "minio:9000"`}},
		{"s3 half credentials", "      url: file:///data/lake", "      url: s3://lake\n      s3: {access_key_id: AK}",
			[]string{`c.yaml:11: connectors.orders.destination.s3: set both access_key_id and secret_access_key, or neither (to use the AWS credential chain)`}},
		{"compression", "      url: file:///data/lake", "      url: file:///data/lake\n      compression: lz4",
			[]string{`c.yaml:11: connectors.orders.destination.compression: must be one of zstd, snappy, gzip, none; got "lz4"`}},
		{"flush zero and negative", "      url: file:///data/lake", "      url: file:///data/lake\n      flush:\n        rows: 0\n        bytes: 0MiB\n        interval: -1s",
			[]string{
				`c.yaml:12: connectors.orders.destination.flush.rows: must be greater than 0`,
				`c.yaml:13: connectors.orders.destination.flush.bytes: must be greater than 0`,
				`c.yaml:14: connectors.orders.destination.flush.interval: must not be negative`,
			}},
		{"flush bad values", "      url: file:///data/lake", "      url: file:///data/lake\n      flush: {rows: many, bytes: 12XB, interval: 60}",
			[]string{
				`c.yaml:11: connectors.orders.destination.flush.rows: must be a whole number, got "many"`,
				`c.yaml:11: connectors.orders.destination.flush.bytes: must be a size such as 128MiB, 64KB or 1048576, got "12XB"`,
				`c.yaml:11: connectors.orders.destination.flush.interval: must be a duration such as 30s, 5m or 1h30m, got "60"`,
			}},
		{"flush unknown key", "      url: file:///data/lake", "      url: file:///data/lake\n      flush: {row: 5}",
			[]string{`c.yaml:11: connectors.orders.destination.flush.row: unknown key (did you mean "rows"?)`}},
		{"heartbeat", "      tables:", "      heartbeat: soon\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.heartbeat: must be a duration such as 30s, 5m or 1h30m, got "soon"`}},
		{"snapshot_chunk", "      tables:", "      snapshot_chunk: 0\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.snapshot_chunk: must be between 1 and 2147483647`}},
		{"snapshot_parallel", "      tables:", "      snapshot_parallel: -1\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.snapshot_parallel: must be between 0 (automatic) and 256`}},
		{"offsets missing", "offsets: file:///var/lib/connectd\n", "",
			[]string{`c.yaml:1: offsets: required: where checkpoints live, e.g. file:///var/lib/connectd`}},
		{"offsets s3 without a bucket", "file:///var/lib/connectd", "s3:///offsets",
			[]string{`c.yaml:1: offsets: s3:// needs a bucket, e.g. s3://bucket/connectd/offsets?region=eu-west-1`}},
		{"offsets ftp", "file:///var/lib/connectd", "ftp://h/offsets",
			[]string{`c.yaml:1: offsets: unknown offset store ftp://: use file:///path/to/dir, s3://bucket/prefix or postgres://host/db`}},
		{"offsets plain path", "file:///var/lib/connectd", "/var/lib/connectd",
			[]string{`c.yaml:1: offsets: must be a URL such as file:///var/lib/connectd, got "/var/lib/connectd"`}},
		{"listen", "offsets:", "server: {listen: localhost}\noffsets:",
			[]string{`c.yaml:1: server.listen: must be host:port, e.g. 127.0.0.1:8083, got "localhost"`}},
		{"no connectors", validPostgres[strings.Index(validPostgres, "connectors:"):], "connectors: {}\n",
			[]string{`c.yaml:2: connectors: at least one connector is required`}},
		{"connectors missing", validPostgres[strings.Index(validPostgres, "connectors:"):], "",
			[]string{`c.yaml:1: connectors: required: at least one connector`}},
		{"source and destination missing", validPostgres[strings.Index(validPostgres, "    source:"):], "    {}\n",
			[]string{`c.yaml:3: connectors.orders.source: required`, `c.yaml:3: connectors.orders.destination: required`}},
		{"section of wrong shape", validPostgres[strings.Index(validPostgres, "    destination:"):], "    destination: [parquet]\n",
			[]string{`c.yaml:8: connectors.orders.destination: must be a mapping of keys to values, got a list`}},
		{"scalar of wrong shape", "      tables:", "      slot: {a: b}\n      tables:",
			[]string{`c.yaml:7: connectors.orders.source.slot: must be a single value, got a mapping`}},
		{"several errors all reported", "      dsn: postgres://u@h:5432/db", "      dsn: x\n      slot: A\n      snapshot: no",
			[]string{
				`c.yaml:6: connectors.orders.source.dsn: must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...)`,
				`c.yaml:7: connectors.orders.source.slot: must match [a-z0-9_]+`,
				`c.yaml:8: connectors.orders.source.snapshot: must be one of initial, initial_only, never, when_needed; got "no"`,
			}},
		{"unknown alias", "[public.orders]", "*tables",
			[]string{`c.yaml:7: alias *tables refers to no anchor defined before it`, `c.yaml:7: connectors.orders.source.tables: must list at least one table`}},
		{"second document", "      url: file:///data/lake\n", "      url: file:///data/lake\n---\nx: 1\n",
			[]string{`c.yaml:12: only one YAML document is allowed (remove the second ---)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(validPostgres, c.old) {
				t.Fatalf("bad case: %q not in the base config", c.old)
			}
			src := strings.Replace(validPostgres, c.old, c.new, 1)
			got := errLines(t, src, nil)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("config:\n%s\ngot errors:\n  %s\nwant:\n  %s", src, strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

const validMySQL = `offsets: file:///s
connectors:
  shop:
    source:
      type: mysql
      dsn: mysql://repl:pw@127.0.0.1:3306/
      server_id: 5401
      tables: ["shop.*"]
    destination: {type: parquet, url: "file:///lake"}
`

func TestMySQLRules(t *testing.T) {
	cfg, err := parse("c.yaml", []byte(validMySQL), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := myOf(cfg.Connectors["shop"].Source); m.Snapshot != "initial" || m.ServerID != 5401 {
		t.Fatalf("mysql = %+v", m)
	}
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"server_id missing", "      server_id: 5401\n", "",
			[]string{`c.yaml:4: connectors.shop.source.server_id: required: a number > 0, unique among the server's replicas`}},
		{"server_id zero", "5401", "0",
			[]string{`c.yaml:7: connectors.shop.source.server_id: must be between 1 and 4294967295 and unique among the server's replicas`}},
		{"server_id too big", "5401", "4294967296",
			[]string{`c.yaml:7: connectors.shop.source.server_id: must be between 1 and 4294967295 and unique among the server's replicas`}},
		{"dsn go driver form", "mysql://repl:pw@127.0.0.1:3306/", "repl:pw@tcp(127.0.0.1:3306)/",
			[]string{`c.yaml:6: connectors.shop.source.dsn: must be a URL like mysql://user:password@host:3306/`}},
		{"dsn without host", "mysql://repl:pw@127.0.0.1:3306/", "mysql:///db",
			[]string{`c.yaml:6: connectors.shop.source.dsn: must be a URL like mysql://user:password@host:3306/: no host`}},
		{"postgres keys rejected", "      server_id: 5401", "      server_id: 5401\n      slot: x",
			[]string{`c.yaml:8: connectors.shop.source.slot: unknown key for type mysql (it belongs to type postgres)`}},
		{"snapshot", "      server_id: 5401", "      server_id: 5401\n      snapshot: maybe",
			[]string{`c.yaml:8: connectors.shop.source.snapshot: must be one of initial, initial_only, never, when_needed; got "maybe"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errLines(t, strings.Replace(validMySQL, c.old, c.new, 1), nil)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestPluginRules(t *testing.T) {
	base := `offsets: file:///s
connectors:
  p:
    source:
      type: plugin
      name: http
    destination: {type: parquet, url: "file:///lake"}
`
	if _, err := parse("c.yaml", []byte(base), nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"neither name nor path", "      name: http\n", "",
			[]string{`c.yaml:4: connectors.p.source: a plugin needs name (looked up in plugins.dir) or path`}},
		{"both", "      name: http", "      name: http\n      path: /bin/x",
			[]string{`c.yaml:7: connectors.p.source.path: set name or path, not both`}},
		{"name with slash", "name: http", "name: ./http",
			[]string{`c.yaml:6: connectors.p.source.name: must be a plain name found in plugins.dir; use path: for an explicit executable`}},
		{"sha256", "      name: http", "      name: http\n      sha256: abc",
			[]string{`c.yaml:7: connectors.p.source.sha256: must be 64 hexadecimal characters (the output of sha256sum)`}},
		{"config not a mapping", "      name: http", "      name: http\n      config: [1]",
			[]string{`c.yaml:7: connectors.p.source.config: must be a mapping of keys to values, got a list`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errLines(t, strings.Replace(base, c.old, c.new, 1), nil)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestInterpolation(t *testing.T) {
	src := `offsets: file://${STATE:-/var/lib/connectd}   # ${UNSET_IN_COMMENT}
# dsn: ${ALSO_UNSET}
connectors:
  orders:
    source:
      type: postgres
      dsn: "${PG_DSN}"
      password: pa$$word$
      tables: [${SCHEMA:-public}.orders, "${EMPTY:-public}.x"]
      slot: ${SLOT}
    destination:
      type: parquet
      url: file:///lake
`
	cfg, err := parse("c.yaml", []byte(src), env("PG_DSN", "postgres://u@h/db?x=1#y", "EMPTY", "", "SLOT", "s"))
	if err != nil {
		t.Fatal(err)
	}
	ps := pgOf(cfg.Connectors["orders"].Source)
	if cfg.Offsets != "file:///var/lib/connectd" || ps.DSN != "postgres://u@h/db?x=1#y" || ps.Password != "pa$word$" || ps.Slot != "s" {
		t.Fatalf("offsets %q, source %+v", cfg.Offsets, ps)
	}
	if !reflect.DeepEqual(ps.Tables, []string{"public.orders", "public.x"}) {
		t.Fatalf("tables %q", ps.Tables)
	}
}

func TestInterpolationErrors(t *testing.T) {
	cases := []struct {
		name, src string
		lookup    func(string) (string, bool)
		want      []string
	}{
		{"unset", "offsets: x\n\nconnectors: ${NOPE}\nb: ${NOPE2}\n", env(),
			[]string{
				`c.yaml:3: ${NOPE}: environment variable NOPE is not set (give a default with ${NOPE:-value})`,
				`c.yaml:4: ${NOPE2}: environment variable NOPE2 is not set (give a default with ${NOPE2:-value})`,
			}},
		{"unterminated", "a: ${X\n", env("X", "1"),
			[]string{`c.yaml:1: unterminated ${ (write $$ for a literal $)`}},
		{"invalid name", "a: ${1X}\nb: ${X-y}\n", env(),
			[]string{
				`c.yaml:1: ${1X}: invalid variable reference: want ${NAME} or ${NAME:-default} (write $$ for a literal $)`,
				`c.yaml:2: ${X-y}: invalid variable reference: want ${NAME} or ${NAME:-default} (write $$ for a literal $)`,
			}},
		{"line break", "a: b\nc: ${ML}\n", env("ML", "x\ny"),
			[]string{`c.yaml:2: ${ML}: the value of ML contains a line break, which a config line cannot hold; use a *_file key for multi-line secrets`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errLines(t, c.src, c.lookup); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestInterpolationKeepsLineNumbers(t *testing.T) {
	// A value with YAML flow syntax expands in place; the error below it keeps its line.
	src := strings.Replace(validPostgres, "[public.orders]", "${TABLES}", 1)
	src = strings.Replace(src, "      url: file:///data/lake", "      url: file:///data/lake\n      compression: ${C}", 1)
	got := errLines(t, src, env("TABLES", "[public.a, public.b]", "C", "brotli"))
	want := []string{`c.yaml:11: connectors.orders.destination.compression: must be one of zstd, snappy, gzip, none; got "brotli"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("pw", "s3cret\n")
	write("dsn", "postgres://u@h/db\r\n")
	write("ak", "AK")
	write("sk", "SK\n")
	src := `offsets: file:///s
connectors:
  orders:
    source:
      type: postgres
      dsn_file: dsn
      password_file: ` + pw + `
      tables: [public.orders]
    destination:
      type: parquet
      url: s3://lake
      s3: {access_key_id_file: ak, secret_access_key_file: sk}
`
	// Relative secret paths are relative to the config file's directory.
	cfg, err := parse(filepath.Join(dir, "c.yaml"), []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := pgOf(cfg.Connectors["orders"].Source)
	s3 := parquetOf(cfg.Connectors["orders"].Destination).S3
	if ps.Password != "s3cret" || ps.DSN != "postgres://u@h/db" || s3.AccessKeyID != "AK" || s3.SecretAccessKey != "SK" {
		t.Fatalf("source %+v, s3 %+v", ps, s3)
	}

	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"both set", "      password_file:", "      password: x\n      password_file:",
			[]string{`c.yaml:8: connectors.orders.source.password_file: set password or password_file, not both`}},
		{"unreadable", "      password_file: " + pw, "      password_file: /nonexistent/pw",
			[]string{`c.yaml:7: connectors.orders.source.password_file: cannot read /nonexistent/pw: no such file or directory`}},
		{"dsn from file is validated", "dsn_file: dsn", "dsn_file: ak",
			[]string{`c.yaml:6: connectors.orders.source.dsn: must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...)`}},
		{"s3 secret both", "secret_access_key_file: sk", "secret_access_key_file: sk, secret_access_key: x",
			[]string{`c.yaml:12: connectors.orders.destination.s3.secret_access_key_file: set secret_access_key or secret_access_key_file, not both`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(filepath.Join(dir, "c.yaml"), []byte(strings.Replace(src, c.old, c.new, 1)), nil)
			var got []string
			if err != nil {
				got = strings.Split(strings.ReplaceAll(err.Error(), filepath.Join(dir, "c.yaml"), "c.yaml"), "\n")
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := parse("c.yaml", []byte("offsets: file:///s\nconnectors:\n  a: [\n"), nil)
	var e *config.Error
	if !errors.As(err, &e) || e.Line != 3 || !strings.HasPrefix(e.Error(), "c.yaml:3: invalid YAML: ") {
		t.Fatalf("err = %v", err)
	}
	_, err = parse("c.yaml", []byte("offsets: a\noffsets: b\n"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "c.yaml:2: invalid YAML: ") {
		t.Fatalf("duplicate key err = %v", err)
	}
}

func TestEmptyAndNonMappingFiles(t *testing.T) {
	for src, want := range map[string]string{
		"":                "c.yaml: the file is empty",
		"# only comments": "c.yaml: the file is empty",
		"- a\n- b\n":      "c.yaml:1: must be a mapping of keys to values, got a list",
	} {
		_, err := parse("c.yaml", []byte(src), nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("parse(%q) = %v, want %q", src, err, want)
		}
	}
}

func TestLoadReadsFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	src := strings.Replace(validPostgres, "postgres://u@h:5432/db", "${CONNECTD_TEST_DSN}", 1)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONNECTD_TEST_DSN", "postgres://x@y/z")
	cfg, err := load(p)
	if err != nil {
		t.Fatal(err)
	}
	if pgOf(cfg.Connectors["orders"].Source).DSN != "postgres://x@y/z" || cfg.Path != p {
		t.Fatalf("cfg = %+v", cfg)
	}
	_, err = load(filepath.Join(dir, "missing.yaml"))
	if want := filepath.Join(dir, "missing.yaml") + ": cannot read the config file: no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("load(missing) = %v, want %s", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    config.Error
		want string
	}{
		{config.Error{File: "c.yaml", Line: 14, Path: "connectors.orders.source.slot", Msg: "must match [a-z0-9_]+"},
			"c.yaml:14: connectors.orders.source.slot: must match [a-z0-9_]+"},
		{config.Error{File: "c.yaml", Line: 3, Msg: "bad"}, "c.yaml:3: bad"},
		{config.Error{File: "c.yaml", Msg: "bad"}, "c.yaml: bad"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
	// errors.As reaches the individual problems of an config.Errors.
	var err error = config.Errors{&cases[0].e, &cases[1].e}
	var e *config.Error
	if !errors.As(err, &e) || e.Line != 14 {
		t.Fatalf("errors.As through config.Errors = %v", e)
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example configs in ../configs")
	}
	pw := filepath.Join(t.TempDir(), "pg-password")
	if err := os.WriteFile(pw, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := env(
		"PG_DSN", "postgres://connectd@127.0.0.1:5432/app?sslmode=disable",
		"PG_PASSWORD_FILE", pw,
		"MYSQL_DSN", "mysql://repl:pw@127.0.0.1:3306/",
		"MYSQL_PASSWORD", "pw",
		"LAKE_BUCKET", "lake",
		"GITHUB_TOKEN", "ghp_example",
		"GITHUB_REPO", "golang/go",
		"WAREHOUSE_DSN", "postgres://loader@127.0.0.1:5433/analytics?sslmode=disable",
	)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parse(f, data, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Order) == 0 {
				t.Fatal("no connectors")
			}
		})
	}
}

func TestTableNamesKeepSpacesAndRefuseQuotes(t *testing.T) {
	if msg := config.CheckTable("Sales.Line Items"); msg != "" {
		t.Errorf("Sales.Line Items: %s, want accepted", msg)
	}
	for _, bad := range []string{`"Sales"."Line Items"`, "public. orders", "public.orders "} {
		if msg := config.CheckTable(bad); msg == "" {
			t.Errorf("%q accepted, want an error", bad)
		}
	}
	if msg := config.CheckTable(`"Sales"."Line Items"`); !strings.Contains(msg, "without quotes") {
		t.Errorf("quoted name: %q, want it to say quotes are not used", msg)
	}
}

func TestOffsetsURLsOfEveryStore(t *testing.T) {
	for _, u := range []string{
		"s3://bucket/connectd/offsets?region=eu-west-1",
		"postgres://connectd:${PW:-x}@db:5432/state?sslmode=require",
		"postgresql://db/state",
	} {
		src := strings.Replace(validPostgres, "file:///var/lib/connectd", u, 1)
		cfg, err := parse("c.yaml", []byte(src), nil)
		if err != nil {
			t.Errorf("offsets: %s: %v", u, err)
			continue
		}
		if want := strings.ReplaceAll(u, "${PW:-x}", "x"); cfg.Offsets != want {
			t.Errorf("offsets = %q, want %q", cfg.Offsets, want)
		}
	}
}
