package postgres

import "testing"

func TestKeyValueDSNTargets(t *testing.T) {
	for dsn, want := range map[string][2]string{
		"host=db1 port=5433 dbname=app":           {"db1:5433", "app"},
		"host = 'DB1' dbname = 'my app'":          {"db1:5432", "my app"},
		`dbname=a\ b host=h`:                      {"h:5432", "a b"},
		"postgres://u:p@H:6432/app?sslmode=false": {"h:6432", "app"},
		"postgres:///app?host=/tmp":               {"/tmp:5432", "app"},
	} {
		server, db := target(dsn)
		if server != want[0] || db != want[1] {
			t.Errorf("target(%q) = %q, %q; want %q, %q", dsn, server, db, want[0], want[1])
		}
	}
}
