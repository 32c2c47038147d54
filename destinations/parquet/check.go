package parquet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/s3client"
)

// checkTimeout bounds each request of Check: it reports, it does not wait out outages.
const checkTimeout = 15 * time.Second

// Check verifies that the url is reachable and writable: for file:// it creates the
// directory and writes, syncs and deletes a probe file; for s3:// it checks the
// bucket and puts and deletes a probe object under the prefix.
func (Kind) Check(ctx context.Context, p connector.DestinationParams) []connector.CheckResult {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return []connector.CheckResult{{Name: "parquet: config", Detail: err.Error(),
			Fix: "set destination.url to file:///dir or s3://bucket/prefix"}}
	}
	var res []connector.CheckResult
	if _, err := codecOf(cfg.Compression); err != nil {
		res = append(res, connector.CheckResult{Name: "parquet: compression", Detail: err.Error(),
			Fix: "set destination.compression to zstd, snappy, gzip or none"})
	}
	loc, err := parseLocation(cfg.URL)
	if err != nil {
		return append(res, connector.CheckResult{Name: "parquet: url", Detail: err.Error(),
			Fix: "set destination.url to file:///absolute/dir or s3://bucket/prefix"})
	}
	if loc.scheme == "file" {
		return append(res, checkLocal(loc)...)
	}
	return append(res, checkS3(ctx, loc, cfg.S3.settings())...)
}

func probeName() string {
	var b [8]byte
	rand.Read(b[:])
	return ".connectd-check-" + hex.EncodeToString(b[:])
}

func checkLocal(loc location) []connector.CheckResult {
	name := "parquet: directory " + loc.root
	if err := os.MkdirAll(loc.root, 0o755); err != nil {
		return []connector.CheckResult{{Name: name, Detail: err.Error(),
			Fix: fmt.Sprintf("create it and let connectd's user (uid %d) write to it: mkdir -p %s", os.Getuid(), loc.root)}}
	}
	res := []connector.CheckResult{{Name: name, OK: true, Detail: "exists"}}
	probe := filepath.Join(loc.root, probeName())
	err := func() error {
		f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = f.WriteString("connectd check\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := os.Remove(probe); err == nil {
			err = rerr
		}
		return err
	}()
	wname := "parquet: write " + loc.root
	if err != nil {
		return append(res, connector.CheckResult{Name: wname, Detail: err.Error(),
			Fix: fmt.Sprintf("let connectd's user (uid %d) create and delete files in %s, and check the disk is not full or read-only", os.Getuid(), loc.root)})
	}
	return append(res, connector.CheckResult{Name: wname, OK: true, Detail: "wrote, synced and deleted a probe file"})
}

func checkS3(ctx context.Context, loc location, cfg s3client.Settings) []connector.CheckResult {
	client, err := newS3Client(ctx, cfg)
	if err != nil {
		return []connector.CheckResult{{Name: "parquet: s3 client", Detail: err.Error(),
			Fix: "check the AWS configuration (AWS_* environment, ~/.aws/config) and destination.s3"}}
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "AWS default"
	}
	var res []connector.CheckResult

	bname := "parquet: bucket s3://" + loc.bucket
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	_, err = client.HeadBucket(cctx, &s3.HeadBucketInput{Bucket: aws.String(loc.bucket)})
	cancel()
	if err != nil {
		return append(res, connector.CheckResult{Name: bname, Detail: describeS3Error(err),
			Fix: s3Fix(err, loc, endpoint, "s3:ListBucket on arn:aws:s3:::"+loc.bucket)})
	}
	res = append(res, connector.CheckResult{Name: bname, OK: true, Detail: "reachable at " + endpoint})

	key := loc.objectKey(probeName())
	wname := "parquet: write " + loc.String()
	cctx, cancel = context.WithTimeout(ctx, checkTimeout)
	_, err = client.PutObject(cctx, &s3.PutObjectInput{
		Bucket: aws.String(loc.bucket), Key: aws.String(key),
		Body: strings.NewReader("connectd check\n"),
	})
	cancel()
	if err != nil {
		return append(res, connector.CheckResult{Name: wname, Detail: "put probe object: " + describeS3Error(err),
			Fix: s3Fix(err, loc, endpoint, "s3:PutObject on arn:aws:s3:::"+loc.bucket+"/"+loc.objectKey("*"))})
	}
	cctx, cancel = context.WithTimeout(ctx, checkTimeout)
	_, err = client.DeleteObject(cctx, &s3.DeleteObjectInput{Bucket: aws.String(loc.bucket), Key: aws.String(key)})
	cancel()
	if err != nil {
		return append(res, connector.CheckResult{Name: wname,
			Detail: fmt.Sprintf("wrote probe object %s but could not delete it: %s", key, describeS3Error(err)),
			Fix:    s3Fix(err, loc, endpoint, "s3:DeleteObject on arn:aws:s3:::"+loc.bucket+"/"+loc.objectKey("*"))})
	}
	return append(res, connector.CheckResult{Name: wname, OK: true, Detail: "put and deleted a probe object"})
}

func describeS3Error(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		var api smithy.APIError
		if errors.As(err, &api) {
			return fmt.Sprintf("HTTP %d %s: %s", re.HTTPStatusCode(), api.ErrorCode(), api.ErrorMessage())
		}
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	return err.Error()
}

// s3Fix says what to do about a failed S3 request; perm is the permission it needed.
func s3Fix(err error, loc location, endpoint, perm string) string {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return fmt.Sprintf("check s3.endpoint (%s) is reachable from this host and that credentials are configured (AWS_ACCESS_KEY_ID or s3.access_key_id)", endpoint)
	}
	var api smithy.APIError
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	switch {
	case code == "NoSuchBucket" || re.HTTPStatusCode() == 404:
		return fmt.Sprintf("create the bucket: aws s3 mb s3://%s (or fix the bucket name in destination.url)", loc.bucket)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		return "check the credentials: s3.access_key_id/s3.secret_access_key or the AWS_* environment"
	case re.HTTPStatusCode() == 403:
		return "check the credentials and grant " + perm
	case re.HTTPStatusCode() == 301 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed":
		return "set s3.region to the bucket's region"
	case re.HTTPStatusCode() == 400:
		return "check s3.endpoint, s3.region and s3.path_style (S3-compatible servers usually need path_style: true)"
	}
	return fmt.Sprintf("check s3.endpoint (%s); the server answered HTTP %d", endpoint, re.HTTPStatusCode())
}
