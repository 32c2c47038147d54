package parquet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/connectd/connectd/internal/s3client"
)

// s3Store uploads staged files to a bucket. Staged files live in the local temp
// directory; PutObject is atomic, so a reader never sees a partial object.
type s3Store struct {
	loc     location
	client  *s3.Client
	staging *stagingArea
	log     *slog.Logger
	backoff backoff
	// attemptTimeout is the least time one PutObject may take before it is
	// abandoned and retried; larger files get more.
	attemptTimeout time.Duration
}

// uploadConcurrency is how many files one Flush uploads at once: enough to hide
// request latency, few enough not to saturate a small machine's uplink per file.
const uploadConcurrency = 4

func newS3Client(ctx context.Context, cfg s3client.Settings) (*s3.Client, error) {
	// Retries happen in one place, s3Store.put, which knows which errors are
	// permanent for this destination and respects Flush's context.
	client, err := s3client.New(ctx, cfg, awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	return client, nil
}

func newS3Store(ctx context.Context, loc location, cfg s3client.Settings, connector string, log *slog.Logger) (*s3Store, error) {
	client, err := newS3Client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	staging, err := openStaging(filepath.Join(os.TempDir(), "connectd-staging", escapeSegment(connector)), 0o700)
	if err != nil {
		return nil, err
	}
	return &s3Store{loc: loc, client: client, staging: staging, log: log, backoff: defaultBackoff, attemptTimeout: 2 * time.Minute}, nil
}

func (s *s3Store) stagingDir() string { return s.staging.dir }
func (s *s3Store) release() error     { return s.staging.release() }
func (s *s3Store) fsyncStaging() bool { return false }
func (s *s3Store) String() string     { return s.loc.String() }

func (s *s3Store) commit(ctx context.Context, files []*closedFile) ([]*closedFile, error) {
	var (
		mu      sync.Mutex
		errs    []error
		pending []*closedFile
		wg      sync.WaitGroup
		sem     = make(chan struct{}, uploadConcurrency)
	)
	for _, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := s.put(ctx, f)
			if err == nil {
				if rerr := os.Remove(f.staging); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
					s.log.Warn("parquet: remove staged file", "path", f.staging, "err", rerr)
				}
				return
			}
			mu.Lock()
			errs = append(errs, err)
			pending = append(pending, f)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return pending, errors.Join(errs...)
}

// put uploads one staged file, retrying transient failures.
func (s *s3Store) put(ctx context.Context, f *closedFile) error {
	key := s.loc.objectKey(f.rel)
	// Large files take longer; a stalled connection must still end.
	timeout := s.attemptTimeout + time.Duration(f.size/(256<<10))*time.Second
	err := s.backoff.do(ctx, func() error {
		body, err := os.Open(f.staging)
		if err != nil {
			return permanent(err)
		}
		defer body.Close()
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err = s.client.PutObject(actx, &s3.PutObjectInput{
			Bucket:        aws.String(s.loc.bucket),
			Key:           aws.String(key),
			Body:          body,
			ContentLength: aws.Int64(f.size),
			ContentType:   aws.String("application/vnd.apache.parquet"),
		})
		if err != nil && !retryable(err) {
			return permanent(err)
		}
		if err != nil {
			s.log.Warn("parquet: upload failed, retrying", "key", key, "err", err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("parquet: upload s3://%s/%s: %w", s.loc.bucket, key, err)
	}
	return nil
}

// retryable is the one place that says which S3 errors are worth retrying: what the
// SDK's standard retryer retries (connection errors, throttling, 500/502/503/504,
// RequestTimeout, ...), plus any other 5xx and 408. Everything else (403, 404
// NoSuchBucket, 400 bad request) is permanent.
func retryable(err error) bool {
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		// An attempt's own timeout; the retry loop checks the caller's context.
		return true
	}
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		code := re.HTTPStatusCode()
		return code >= 500 || code == 408 || code == 429
	}
	return false
}

// permanentError stops a retry loop.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// backoff retries with capped exponential delays, each jittered by ±50%.
type backoff struct {
	min, max time.Duration
	attempts int
}

var defaultBackoff = backoff{min: 100 * time.Millisecond, max: 10 * time.Second, attempts: 10}

func (b backoff) do(ctx context.Context, fn func() error) error {
	delay := b.min
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if cerr := ctx.Err(); cerr != nil {
			return errors.Join(err, cerr)
		}
		if attempt >= b.attempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		sleep := time.Duration(rand.Int64N(int64(delay))) + delay/2
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, b.max)
	}
}

func (s *s3Store) list(ctx context.Context, dir string) ([]string, error) {
	prefix := s.loc.objectKey(dir) + "/"
	var out []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.loc.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("parquet: list s3://%s/%s: %w", s.loc.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, ".parquet") {
				out = append(out, strings.TrimPrefix(key, s.loc.objectKey("")))
			}
		}
	}
	return out, nil
}

func (s *s3Store) remove(ctx context.Context, rels []string) error {
	for _, rel := range rels {
		key := s.loc.objectKey(rel)
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.loc.bucket), Key: aws.String(key)}); err != nil {
			return fmt.Errorf("parquet: delete s3://%s/%s: %w", s.loc.bucket, key, err)
		}
	}
	return nil
}
