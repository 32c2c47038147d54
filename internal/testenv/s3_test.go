package testenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestS3PutDownloadPauseRestartStop(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	srv, err := StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartS3 took %s (%s, dir %s)", time.Since(start), srv.Endpoint, srv.Dir)
	defer srv.Stop()

	if err := srv.CreateBucket(ctx, "lake"); err != nil {
		t.Fatal(err)
	}
	objects := map[string][]byte{
		"raw/public/orders/date=2026-01-02/a.parquet": []byte("first"),
		"raw/public/orders/date=2026-01-03/b.parquet": []byte("second"),
		"other/c.parquet": []byte("not under the prefix"),
	}
	client := srv.Client()
	for key, body := range objects {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	local := t.TempDir()
	if err := srv.Download(ctx, "lake", "raw/", local); err != nil {
		t.Fatal(err)
	}
	for key, body := range objects {
		got, err := os.ReadFile(filepath.Join(local, key))
		if key == "other/c.parquet" {
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s outside the prefix was downloaded (err %v)", key, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: got %q, %v; want %q", key, got, err, body)
		}
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = client.ListBuckets(pctx, &s3.ListBucketsInput{})
	pcancel()
	if err == nil {
		t.Fatal("paused server answered")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("after resume: %v", err)
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String("other/c.parquet")})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	out.Body.Close()

	pid := srv.proc.pid()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("versitygw %d alive after Stop", pid)
	}
	if _, err := os.Stat(srv.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s still there after Stop: %v", srv.Dir, err)
	}
}
