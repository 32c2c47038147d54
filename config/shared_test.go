package config_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// twoConnectors renders a config with two connectors; a and b are their source and
// destination blocks (indented for a connector), so that each case shows only what
// it shares.
func twoConnectors(nameA, a, nameB, b string) string {
	return "offsets: file:///var/lib/connectd\nconnectors:\n  " + nameA + ":\n" + a + "  " + nameB + ":\n" + b
}

func pgConn(dsn, extra, url string) string {
	return "    source:\n      type: postgres\n      dsn: " + dsn + "\n      tables: [public.orders]\n" + extra +
		"    destination:\n      type: parquet\n      url: " + url + "\n"
}

func myConn(dsn string, id int, url string) string {
	return "    source:\n      type: mysql\n      dsn: " + dsn + "\n      server_id: " + strconv.Itoa(id) + "\n      tables: [\"shop.*\"]\n" +
		"    destination:\n      type: parquet\n      url: " + url + "\n"
}

func TestConnectorsSharingASlotPublicationServerIDOrLakeAreRefused(t *testing.T) {
	const pg = "postgres://u@db1:5432/app"
	const my = "mysql://repl:pw@mysql1:3306/"
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"default slot and publication of orders-eu and orders_eu",
			twoConnectors("orders-eu", pgConn(pg, "", "file:///lake/a"), "orders_eu", pgConn(pg, "", "file:///lake/b")),
			[]string{
				`c.yaml:11: connectors.orders_eu.source.slot: replication slot "connectd_orders_eu" is also used by connector "orders-eu" (line 3) on the same server; the default is connectd_<name> with '-' read as '_' and capitals as lower case; one replication slot serves one connector, or the changes are split between them: set slot: to a distinct name`,
				`c.yaml:11: connectors.orders_eu.source.publication: publication "connectd_orders_eu" is also used by connector "orders-eu" (line 3) on the same server; the default is connectd_<name> with '-' read as '_' and capitals as lower case; one publication serves one connector, or the changes are split between them: set publication: to a distinct name`,
			}},
		{"an explicit slot on the same server, another database",
			twoConnectors("a", pgConn(pg, "      slot: shared\n", "file:///lake/a"), "b", pgConn("host=DB1 port=5432 dbname=other", "      slot: shared\n", "file:///lake/b")),
			[]string{`c.yaml:17: connectors.b.source.slot: replication slot "shared" is also used by connector "a" (line 8) on the same server; one replication slot serves one connector, or the changes are split between them: set slot: to a distinct name`}},
		{"one publication in one database",
			twoConnectors("a", pgConn(pg, "      publication: pub\n", "file:///lake/a"), "b", pgConn("postgresql://other@db1/app", "      publication: pub\n", "file:///lake/b")),
			[]string{`c.yaml:17: connectors.b.source.publication: publication "pub" is also used by connector "a" (line 8) on the same server; one publication serves one connector, or the changes are split between them: set publication: to a distinct name`}},
		{"one server_id on one server",
			twoConnectors("shop", myConn(my, 5401, "file:///lake/shop"), "shop2", myConn("mysql://other@MYSQL1/", 5401, "file:///lake/shop2")),
			[]string{`c.yaml:16: connectors.shop2.source.server_id: server_id "5401" is also used by connector "shop" (line 7) on the same server; two replicas with one server_id disconnect each other and changes are missed: give each connector its own server_id`}},
		{"one lake",
			twoConnectors("a", pgConn(pg, "", "file:///lake/x"), "b", myConn(my, 1, "file:///lake/x/")),
			[]string{`c.yaml:19: connectors.b.destination.url: file:///lake/x/: connector "a" writes there too (line 10); two connectors in one lake tree overwrite or mix each other's files: give each connector its own url (e.g. .../b)`}},
		{"a lake inside another",
			twoConnectors("a", pgConn(pg, "", "s3://bucket/raw"), "b", myConn(my, 1, "s3://bucket/raw/shop")),
			[]string{`c.yaml:19: connectors.b.destination.url: s3://bucket/raw/shop: it lies inside the lake of connector "a" (line 10); two connectors in one lake tree overwrite or mix each other's files: give each connector its own url (e.g. .../b)`}},
		{"a lake around another",
			twoConnectors("a", pgConn(pg, "", "s3://bucket/raw/pg"), "b", myConn(my, 1, "s3://bucket")),
			[]string{`c.yaml:19: connectors.b.destination.url: s3://bucket: the lake of connector "a" lies inside it (line 10); two connectors in one lake tree overwrite or mix each other's files: give each connector its own url (e.g. .../b)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errLines(t, c.src, nil)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func TestConnectorsApartAreAccepted(t *testing.T) {
	for name, src := range map[string]string{
		"same slot name on two servers": twoConnectors("a", pgConn("postgres://u@db1/app", "      slot: s\n", "file:///lake/a"),
			"b", pgConn("host=db2 dbname=app", "      slot: s\n", "file:///lake/b")),
		"same publication in two databases": twoConnectors("a", pgConn("postgres://u@db1/app", "      publication: p\n", "file:///lake/a"),
			"b", pgConn("postgres://u@db1/other", "      publication: p\n      slot: s2\n", "file:///lake/b")),
		"same server_id on two servers": twoConnectors("a", myConn("mysql://r@m1:3306/", 7, "file:///lake/a"), "b", myConn("mysql://r@m1:3307/", 7, "file:///lake/b")),
		"sibling lakes sharing a name prefix": twoConnectors("a", pgConn("postgres://u@db1/app", "", "file:///lake/raw"),
			"b", pgConn("postgres://u@db1/app", "", "file:///lake/raw2")),
		"one bucket path on two S3 endpoints": twoConnectors("a", pgConn("postgres://u@db1/app", "", "s3://bucket/raw"),
			"b", pgConn("postgres://u@db1/app", "", "s3://bucket/raw\n      s3: {endpoint: \"http://127.0.0.1:9000\"}")),
	} {
		if _, err := parse("c.yaml", []byte(src), nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFlushBytesAboveOnePutObjectIsRefusedForS3(t *testing.T) {
	s3 := strings.Replace(validPostgres, "url: file:///data/lake", "url: s3://bucket/raw\n      flush: {rows: 10, bytes: 5GiB}", 1)
	want := []string{`c.yaml:11: connectors.orders.destination.flush.bytes: 5GiB is too much for an s3:// lake: each file is uploaded with one PutObject, which S3 refuses above 5GiB, and a file can outgrow the limit by one batch; set bytes to 4GiB or less (files of 128MiB-1GiB read best)`}
	if got := errLines(t, s3, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, ok := range []string{
		strings.Replace(validPostgres, "url: file:///data/lake", "url: s3://bucket/raw\n      flush: {bytes: 4GiB}", 1),
		strings.Replace(validPostgres, "url: file:///data/lake", "url: file:///data/lake\n      flush: {bytes: 6GiB}", 1),
	} {
		if _, err := parse("c.yaml", []byte(ok), nil); err != nil {
			t.Errorf("refused: %v\n%s", err, ok)
		}
	}
}
