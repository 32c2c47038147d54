package offsets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/s3client"
	"github.com/connectd/connectd/record"
)

// S3Location is where an s3:// store keeps its objects, and how to reach them.
type S3Location struct {
	Bucket string
	Prefix string            // without leading or trailing '/'; may be empty
	S3     s3client.Settings // endpoint, region, path style; credentials from the AWS chain
	// LeaseTTL is how long a connector's lease lasts without renewal (0: DefaultLeaseTTL).
	LeaseTTL time.Duration
}

// ParseS3URL reads s3://bucket/prefix?region=eu-west-1&endpoint=http://host:9000&path_style=true.
func ParseS3URL(raw string) (S3Location, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" {
		return S3Location{}, fmt.Errorf("offsets: %q is not an s3://bucket/prefix URL", raw)
	}
	if u.Host == "" {
		return S3Location{}, fmt.Errorf("offsets: %q names no bucket: want s3://bucket/prefix", raw)
	}
	loc := S3Location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for k, v := range u.Query() {
		val := v[len(v)-1]
		switch k {
		case "region":
			loc.S3.Region = val
		case "endpoint":
			loc.S3.Endpoint = val
		case "path_style":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return S3Location{}, fmt.Errorf("offsets: %s: path_style=%q: want true or false", raw, val)
			}
			loc.S3.PathStyle = b
		case "lease":
			d, err := time.ParseDuration(val)
			if err != nil || d < 3*time.Second {
				return S3Location{}, fmt.Errorf("offsets: %s: lease=%q: want a duration of at least 3s, like 30s", raw, val)
			}
			loc.LeaseTTL = d
		default:
			return S3Location{}, fmt.Errorf("offsets: %s: unknown parameter %q (have region, endpoint, path_style, lease; credentials come from the AWS_* environment or shared config)", raw, k)
		}
	}
	return loc, nil
}

func (l S3Location) String() string {
	if l.Prefix == "" {
		return "s3://" + l.Bucket
	}
	return "s3://" + l.Bucket + "/" + l.Prefix
}

// S3 is a Store keeping one small object per connector under a bucket prefix, in
// the same JSON as a File's offset files. A PutObject replaces an object whole, so a
// crash leaves either the old or the new position, and S3 reads after a write see it.
type S3 struct {
	loc    S3Location
	client *s3.Client
}

var _ Store = (*S3)(nil)

// NewS3 returns the store at loc, after checking that its bucket can be reached.
func NewS3(ctx context.Context, loc S3Location) (*S3, error) {
	client, err := s3client.New(ctx, loc.S3)
	if err != nil {
		return nil, fmt.Errorf("offsets: %s: %w", loc, err)
	}
	hctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := client.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(loc.Bucket)}); err != nil {
		return nil, fmt.Errorf("offsets: %s: bucket %s cannot be reached (does it exist, and may these credentials use it?): %w", loc, loc.Bucket, err)
	}
	return &S3{loc: loc, client: client}, nil
}

// Close does nothing: the client keeps no connection that needs closing.
func (s *S3) Close() error { return nil }

func (s *S3) key(name string) string {
	if s.loc.Prefix == "" {
		return name
	}
	return s.loc.Prefix + "/" + name
}

func (s *S3) offsetKey(connector string) string { return s.key(escapeName(connector) + fileExt) }

// callTimeout bounds one call to a store on a server (its retries included), so that
// a server that stopped answering becomes an error the supervisor retries, not a
// commit that waits forever.
const callTimeout = time.Minute

// get returns an object's content, or nil when there is no such object.
func (s *S3) get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)})
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

func (s *S3) put(ctx context.Context, key string, data []byte, contentType string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.loc.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(contentType),
	})
	return err
}

// notFound reports a missing object, whether the server says so with S3's error code
// or only with a 404.
func notFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}

// Load returns the connector's committed position, or nil when it has none.
func (s *S3) Load(ctx context.Context, connector string) (record.Position, error) {
	if err := checkName(connector); err != nil {
		return nil, err
	}
	key := s.offsetKey(connector)
	data, err := s.get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("offsets: load %s from s3://%s/%s: %w", connector, s.loc.Bucket, key, err)
	}
	if data == nil {
		return nil, nil
	}
	return decodeOffset(connector, "object s3://"+s.loc.Bucket+"/"+key, data)
}

// Commit durably replaces the connector's position, unless pos is below it. It is
// not fenced: connectd commits through a lease (Acquire).
func (s *S3) Commit(ctx context.Context, connector string, pos record.Position) error {
	if err := checkName(connector); err != nil {
		return err
	}
	data, err := encodeOffset(connector, pos)
	if err != nil {
		return err
	}
	committed, err := s.Load(ctx, connector)
	if err != nil {
		return err
	}
	if err := checkForward(connector, committed, pos); err != nil {
		return err
	}
	key := s.offsetKey(connector)
	if err := s.put(ctx, key, data, "application/json"); err != nil {
		return fmt.Errorf("offsets: commit %s to s3://%s/%s: %w", connector, s.loc.Bucket, key, err)
	}
	return nil
}

// Reset forgets the connector's source state, then replaces its position with to
// (nil: deletes it).
func (s *S3) Reset(ctx context.Context, connector string, to record.Position) error {
	if err := checkName(connector); err != nil {
		return err
	}
	var data []byte
	if to != nil {
		var err error
		if data, err = encodeOffset(connector, to); err != nil {
			return err
		}
	}
	// Escaped names hold no '.', so this prefix is the connector's own objects and
	// nobody else's.
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	keys, err := s.list(ctx, escapeName(connector)+".")
	if err != nil {
		return fmt.Errorf("offsets: reset %s: %w", connector, err)
	}
	offset := s.offsetKey(connector)
	for _, k := range keys {
		if k == offset {
			continue
		}
		if err := s.delete(ctx, k); err != nil {
			return fmt.Errorf("offsets: reset %s: %w", connector, err)
		}
	}
	if to != nil {
		if err := s.put(ctx, offset, data, "application/json"); err != nil {
			return fmt.Errorf("offsets: reset %s: put s3://%s/%s: %w", connector, s.loc.Bucket, offset, err)
		}
		return nil
	}
	if err := s.delete(ctx, offset); err != nil {
		return fmt.Errorf("offsets: reset %s: %w", connector, err)
	}
	return nil
}

// delete removes one object; a missing one is not an error.
func (s *S3) delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)})
	if err != nil && !notFound(err) {
		return fmt.Errorf("delete s3://%s/%s: %w", s.loc.Bucket, key, err)
	}
	return nil
}

// list returns the keys under the store's prefix whose name starts with start.
func (s *S3) list(ctx context.Context, start string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.loc.Bucket), Prefix: aws.String(s.key(start))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.loc.Bucket, s.key(start), err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// List names the connectors that have a committed position, sorted.
func (s *S3) List(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	keys, err := s.list(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	var names []string
	for _, k := range keys {
		base := strings.TrimPrefix(k, s.key(""))
		if strings.Contains(base, "/") || !strings.HasSuffix(base, fileExt) {
			continue
		}
		name, ok := unescapeName(strings.TrimSuffix(base, fileExt))
		if !ok {
			continue
		}
		// A small object may be a lease's marker (no position yet); only a read tells.
		pos, err := s.Load(ctx, name)
		if err != nil {
			return nil, err
		}
		if pos != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// State returns the store of the connector's source state: one object per key.
func (s *S3) State(connector string) connector.StateStore {
	return &s3State{s: s, connector: connector}
}

type s3State struct {
	s         *S3
	connector string
}

func (st *s3State) objectKey(key string) string {
	return st.s.key(escapeName(st.connector) + "." + escapeName(key) + stateExt)
}

func (st *s3State) Load(ctx context.Context, key string) ([]byte, error) {
	if err := checkState(st.connector, key); err != nil {
		return nil, err
	}
	data, err := st.s.get(ctx, st.objectKey(key))
	if err != nil {
		return nil, fmt.Errorf("offsets: load state %s/%s: %w", st.connector, key, err)
	}
	return data, nil
}

func (st *s3State) Save(ctx context.Context, key string, data []byte) error {
	if err := checkState(st.connector, key); err != nil {
		return err
	}
	if err := st.s.put(ctx, st.objectKey(key), data, "application/octet-stream"); err != nil {
		return fmt.Errorf("offsets: save state %s/%s: %w", st.connector, key, err)
	}
	return nil
}
