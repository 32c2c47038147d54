package parquet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// The S3 server is started by the first test that needs it (none in -short mode)
// and stopped by TestMain, so the file:// tests do not wait for it.
var sharedS3 = testenv.SharedS3()

func TestMain(m *testing.M) {
	code := m.Run()
	if err := sharedS3.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func startS3(t testing.TB) *testenv.S3 {
	t.Helper()
	return sharedS3.Get(t)
}

func s3Config(s *testenv.S3) S3 {
	return S3{Endpoint: s.Endpoint, Region: s.Region, PathStyle: true,
		AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
}

// makeBucket creates a bucket named after the test.
func makeBucket(t *testing.T, s *testenv.S3) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-")
	if err := s.CreateBucket(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

func listKeys(t *testing.T, s *testenv.S3, bucket string) []string {
	t.Helper()
	out, err := s.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// TestS3FlushUploadsReadableLake writes to a real S3 server, replays after a crash,
// downloads the lake and reads it with DuckDB.
func TestS3FlushUploadsReadableLake(t *testing.T) {
	srv := startS3(t)
	bucket := makeBucket(t, srv)
	ctx := context.Background()
	recs := changeStream(1200)
	url := "s3://" + bucket + "/raw/cdc"

	d := openURL(t, url, "s3lake", s3Config(srv))
	if err := d.Write(ctx, recs[:700]); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, srv, bucket); len(keys) != 0 {
		t.Fatalf("objects visible before Flush: %v", keys)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	staging := d.store.stagingDir()
	if left, _ := os.ReadDir(staging); len(left) != 1 || left[0].Name() != stagingLockName {
		t.Errorf("staging %s holds more than its lock after Flush: %d entries", staging, len(left))
	}
	if err := d.Write(ctx, recs[700:1000]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil { // crash with 300 records unflushed
		t.Fatal(err)
	}
	// The crash came after the upload but before the offset commit: the replay
	// starts from the beginning again, with different batch boundaries.
	d = openURL(t, url, "s3lake", s3Config(srv))
	for _, batch := range [][2]int{{0, 150}, {150, 1200}} {
		if err := d.Write(ctx, recs[batch[0]:batch[1]]); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	d.Close(ctx)

	keys := listKeys(t, srv, bucket)
	for _, k := range keys {
		if !strings.HasPrefix(k, "raw/cdc/") || !strings.Contains(k, "/date=") || !strings.HasSuffix(k, ".parquet") {
			t.Errorf("unexpected key %s", k)
		}
	}
	local := t.TempDir()
	if err := srv.Download(ctx, bucket, "raw/cdc/", local); err != nil {
		t.Fatal(err)
	}
	db := lakedb.DuckDB(t)
	got := queryStrings(t, db, "SELECT count(*), count(DISTINCT _pos) FROM "+lakedb.ParquetTree(local+"/raw/cdc"))[0]
	if got[0] != "1200" || got[1] != "1200" {
		t.Errorf("rows, distinct positions = %v, want 1200 1200 (keys %v)", got, keys)
	}
	tables := queryStrings(t, db, "SELECT DISTINCT regexp_extract(filename, 'cdc/([a-z]+/[a-z]+)/', 1) AS t FROM "+
		strings.Replace(lakedb.ParquetTree(local+"/raw/cdc"), "union_by_name = true", "union_by_name = true, filename = true", 1)+" ORDER BY t")
	if fmt.Sprint(tables) != "[[crm/users] [public/items] [public/orders]]" {
		t.Errorf("tables = %v", tables)
	}
}

// TestS3MissingBucketFailsWithoutRetrying: a permanent error ends Flush at once
// with the key in the message.
func TestS3MissingBucketFailsWithoutRetrying(t *testing.T) {
	srv := startS3(t)
	ctx := context.Background()
	d := openURL(t, "s3://no-such-bucket/x", "nobucket", s3Config(srv))
	defer d.Close(ctx)
	if err := d.Write(ctx, changeStream(10)); err != nil {
		t.Fatal(err)
	}
	err := d.Flush(ctx)
	if err == nil {
		t.Fatal("Flush to a missing bucket succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "parquet: upload s3://no-such-bucket/x/") || !strings.Contains(msg, "NoSuchBucket") ||
		strings.Contains(msg, "giving up") {
		t.Errorf("error = %v; want a permanent NoSuchBucket error naming the key", err)
	}
	if rows, _ := d.Buffered(); rows != 10 {
		t.Errorf("after a failed Flush Buffered rows = %d, want 10 (still not durable)", rows)
	}
}

// TestS3TransientOutageIsRetried: with the server frozen, uploads time out and are
// retried until it answers again; Flush then succeeds and the data is all there.
func TestS3TransientOutageIsRetried(t *testing.T) {
	srv := startS3(t)
	bucket := makeBucket(t, srv)
	ctx := context.Background()
	d := openURL(t, "s3://"+bucket, "outage", s3Config(srv))
	defer d.Close(ctx)
	d.store.(*s3Store).attemptTimeout = 500 * time.Millisecond
	recs := changeStream(300)
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan error, 1)
	go func() {
		time.Sleep(2 * time.Second)
		resumed <- srv.Resume()
	}()
	err := d.Flush(ctx)
	if rerr := <-resumed; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("Flush across a 2s outage: %v", err)
	}
	local := t.TempDir()
	if err := srv.Download(ctx, bucket, "", local); err != nil {
		t.Fatal(err)
	}
	db := lakedb.DuckDB(t)
	if got := queryStrings(t, db, "SELECT count(DISTINCT _pos) FROM "+lakedb.ParquetTree(local))[0][0]; got != "300" {
		t.Errorf("distinct positions = %s, want 300", got)
	}
}

func TestRetryableClassification(t *testing.T) {
	if retryable(context.Canceled) {
		t.Error("context.Canceled is retryable")
	}
	if !retryable(fmt.Errorf("put: %w", context.DeadlineExceeded)) {
		t.Error("an attempt's timeout is not retryable")
	}
	if retryable(errors.New("invalid input")) {
		t.Error("an unclassified error is retryable")
	}
}

func checkParams(url string, s3cfg S3) connector.DestinationParams {
	return connector.DestinationParams{Name: "check", Config: config.Destination{Type: "parquet",
		Config: &Config{URL: url, S3: s3cfg}}}
}

// failed returns the first failed check, or nil.
func failed(res []connector.CheckResult) *connector.CheckResult {
	for i := range res {
		if !res[i].OK {
			return &res[i]
		}
	}
	return nil
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if f := failed(Kind{}.Check(ctx, checkParams("file://"+dir+"/lake", S3{}))); f != nil {
		t.Errorf("file:// check of a writable dir failed: %+v", f)
	}
	if left := parquetFiles(t, dir); len(left) != 0 {
		t.Errorf("check left files: %v", left)
	}
	f := failed(Kind{}.Check(ctx, checkParams("file:///etc/hostname/lake", S3{})))
	if f == nil || !strings.Contains(f.Fix, "mkdir -p /etc/hostname/lake") {
		t.Errorf("file:// under a regular file: %+v, want a failure with a mkdir fix", f)
	}
	if f := failed(Kind{}.Check(ctx, checkParams("http://x", S3{}))); f == nil || f.Name != "parquet: url" {
		t.Errorf("http url: %+v, want a url failure", f)
	}

	srv := startS3(t)
	bucket := makeBucket(t, srv)
	if f := failed(Kind{}.Check(ctx, checkParams("s3://"+bucket+"/p", s3Config(srv)))); f != nil {
		t.Errorf("s3 check of a usable bucket failed: %+v", f)
	}
	if keys := listKeys(t, srv, bucket); len(keys) != 0 {
		t.Errorf("check left objects: %v", keys)
	}
	f = failed(Kind{}.Check(ctx, checkParams("s3://missing-bucket/p", s3Config(srv))))
	if f == nil || !strings.Contains(f.Fix, "aws s3 mb s3://missing-bucket") {
		t.Errorf("missing bucket: %+v, want the mb fix", f)
	}
	bad := s3Config(srv)
	bad.SecretAccessKey = "wrong"
	f = failed(Kind{}.Check(ctx, checkParams("s3://"+bucket, bad)))
	if f == nil || !strings.Contains(f.Fix, "credentials") {
		t.Errorf("wrong secret: %+v, want a credentials fix", f)
	}
	closed := s3Config(srv)
	closed.Endpoint = "http://127.0.0.1:1"
	f = failed(Kind{}.Check(ctx, checkParams("s3://"+bucket, closed)))
	if f == nil || !strings.Contains(f.Fix, "check s3.endpoint (http://127.0.0.1:1)") {
		t.Errorf("closed port: %+v, want an endpoint fix", f)
	}
}
