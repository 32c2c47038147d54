package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
)

// What tests of `connectd verify` do to a lake behind connectd's back: list the
// files, delete one, rewrite one with a changed cell.

// Keys lists the keys under prefix ending in suffix.
func (s *S3) Keys(ctx context.Context, bucket, prefix, suffix string) (map[string]bool, error) {
	keys := map[string]bool{}
	pages := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("testenv: s3: list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range out.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, suffix) {
				keys[k] = true
			}
		}
	}
	return keys, nil
}

// NewKeys returns, sorted, the keys of after that before lacks.
func NewKeys(before, after map[string]bool) []string {
	var out []string
	for k := range after {
		if !before[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Delete removes one object.
func (s *S3) Delete(ctx context.Context, bucket, key string) error {
	if _, err := s.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("testenv: s3: delete s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// RewriteParquetCell replaces, in every row of a Parquet object, the non-null values
// of a string column with value, and puts the file back under the same key with the
// same schema.
func (s *S3) RewriteParquetCell(ctx context.Context, bucket, key, column, value string) error {
	client := s.Client()
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("testenv: s3: get s3://%s/%s: %w", bucket, key, err)
	}
	data, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		return fmt.Errorf("testenv: s3: get s3://%s/%s: %w", bucket, key, err)
	}
	out, err := rewriteCell(data, column, value)
	if err != nil {
		return fmt.Errorf("testenv: rewrite s3://%s/%s: %w", bucket, key, err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(out)}); err != nil {
		return fmt.Errorf("testenv: s3: put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

func rewriteCell(data []byte, column, value string) ([]byte, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	leaf, ok := f.Schema().Lookup(column)
	if !ok {
		return nil, fmt.Errorf("no column %s", column)
	}
	var rows []parquet.Row
	rr := parquet.NewReader(bytes.NewReader(data))
	defer rr.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := rr.ReadRows(buf)
		for _, row := range buf[:n] {
			for i, v := range row {
				if v.Column() == leaf.ColumnIndex && !v.IsNull() {
					row[i] = parquet.ByteArrayValue([]byte(value)).Level(v.RepetitionLevel(), v.DefinitionLevel(), v.Column())
				}
			}
			rows = append(rows, row.Clone())
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no rows")
	}
	var out bytes.Buffer
	pw := parquet.NewWriter(&out, f.Schema())
	if _, err := pw.WriteRows(rows); err != nil {
		return nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
