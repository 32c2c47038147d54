package parquet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/record"
)

// TestConformance runs the connector suite against the lake destination, on local
// files and on a real S3 server, reading the lake back with DuckDB.
func TestConformance(t *testing.T) {
	t.Run("Local", func(t *testing.T) {
		conformance.TestDestination(t, lakeDriver{})
	})
	t.Run("S3", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs an S3 server")
		}
		conformance.TestDestination(t, lakeDriver{s3: startS3(t)})
	})
}

// lakeDriver gives each check its own lake: a directory, or a bucket on s3.
type lakeDriver struct{ s3 *testenv.S3 }

var conformanceSeq atomic.Int64

func (d lakeDriver) Setup(ctx context.Context, tb testing.TB) (conformance.DestinationFixture, error) {
	n := conformanceSeq.Add(1)
	f := &lakeFixture{name: fmt.Sprintf("conformance_%d", n), tb: tb, s3: d.s3}
	if d.s3 == nil {
		f.dir = tb.TempDir()
		return f, nil
	}
	f.bucket = fmt.Sprintf("conformance-%d", n)
	if err := d.s3.CreateBucket(ctx, f.bucket); err != nil {
		return nil, err
	}
	return f, nil
}

type lakeFixture struct {
	name   string
	tb     testing.TB
	dir    string      // the local lake
	s3     *testenv.S3 // or the server
	bucket string      // and bucket of the S3 lake, below the prefix "lake/"
}

// destinationConfig is the one place the driver builds the connector's config.
func (f *lakeFixture) destinationConfig() config.Destination {
	if f.s3 == nil {
		return config.Destination{Type: "parquet", Config: &Config{URL: "file://" + f.dir}}
	}
	return config.Destination{Type: "parquet", Config: &Config{URL: "s3://" + f.bucket + "/lake", S3: s3Config(f.s3)}}
}

func (f *lakeFixture) Open(ctx context.Context) (connector.Destination, error) {
	return Kind{}.Open(ctx, connector.DestinationParams{
		Name: f.name, Config: f.destinationConfig(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("connector", f.name),
	})
}

// ReadBack reads every row of the lake with DuckDB, an S3 lake after downloading it.
func (f *lakeFixture) ReadBack(ctx context.Context) ([]conformance.Stored, error) {
	root := f.dir
	if f.s3 != nil {
		root = filepath.Join(f.tb.TempDir(), "download")
		if err := f.s3.Download(ctx, f.bucket, "lake/", root); err != nil {
			return nil, err
		}
		root = filepath.Join(root, "lake")
	}
	if files, _ := filepath.Glob(filepath.Join(root, "*", "*", "date=*", "*.parquet")); len(files) == 0 {
		return nil, nil
	}
	_, rows, err := lakedb.QueryText(lakedb.DuckDB(f.tb), "SELECT _pos, _op FROM "+lakedb.ParquetTree(root))
	if err != nil {
		return nil, err
	}
	out := make([]conformance.Stored, 0, len(rows))
	for _, r := range rows {
		pos, err := record.ParsePosition(r[0].String)
		if err != nil {
			return nil, fmt.Errorf("_pos %q: %w", r[0].String, err)
		}
		if len(r[1].String) != 1 || strings.TrimSpace(r[1].String) == "" {
			return nil, fmt.Errorf("_op %q at %s", r[1].String, r[0].String)
		}
		out = append(out, conformance.Stored{Pos: pos, Op: record.Op(r[1].String[0])})
	}
	return out, nil
}
