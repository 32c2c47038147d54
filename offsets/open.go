package offsets

import (
	"context"
	"fmt"
	"strings"
)

// Open returns the Store an offsets URL names:
//
//	file:///abs/dir                   a directory (file://rel/dir: relative to the working directory)
//	s3://bucket/prefix?region=&endpoint=&path_style=true&lease=30s
//	postgres://user@host:5432/db?sslmode=...
//
// An s3:// store takes its credentials from the standard AWS chain (AWS_* variables,
// shared config, web identity); endpoint and path_style are for S3-compatible
// servers. A postgres:// store keeps its tables (see NewPostgres) in the database
// the URL names; every other parameter is pgx's.
func Open(ctx context.Context, url string) (Store, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("offsets: %q is not a URL: want file:///path/to/dir, s3://bucket/prefix or postgres://host/db", url)
	}
	switch strings.ToLower(scheme) {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("offsets: %q names no directory: want file:///path/to/dir", url)
		}
		return NewFile(rest)
	case "s3":
		loc, err := ParseS3URL(url)
		if err != nil {
			return nil, err
		}
		return NewS3(ctx, loc)
	case "postgres", "postgresql":
		return NewPostgres(ctx, url)
	default:
		return nil, fmt.Errorf("offsets: unknown store %q: want file://, s3:// or postgres://", scheme+"://")
	}
}
