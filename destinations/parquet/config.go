package parquet

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/internal/s3client"
)

// Config is the destination section of `type: parquet` (docs/configuration.md).
type Config struct {
	URL         string `yaml:"url" required:"file:///path/to/lake or s3://bucket/prefix" doc:"Where the lake is: file:///absolute/dir or s3://bucket/prefix." example:"s3://lake/raw"`
	S3          S3     `yaml:"s3" doc:"Settings for s3:// URLs; credentials default to the AWS chain."`
	Compression string `yaml:"compression" default:"zstd" enum:"zstd,snappy,gzip,none" doc:"The Parquet compression codec."`
}

// S3 holds the settings for s3:// URLs. Credentials default to the AWS chain.
type S3 struct {
	Endpoint        string `yaml:"endpoint" doc:"http(s)://host:port of an S3-compatible server (MinIO, ...); empty for AWS." example:"http://127.0.0.1:9000"`
	Region          string `yaml:"region" defaultdoc:"from the AWS configuration, else us-east-1" doc:"The bucket's region."`
	PathStyle       bool   `yaml:"path_style" default:"false" doc:"Address the bucket in the path (most S3-compatible servers need it)."`
	AccessKeyID     string `yaml:"access_key_id" secret:"true" defaultdoc:"the AWS credential chain" doc:"Static credentials, with secret_access_key."`
	SecretAccessKey string `yaml:"secret_access_key" secret:"true" defaultdoc:"the AWS credential chain" doc:"Static credentials, with access_key_id."`
}

// ConfigSpec describes the `type: parquet` destination section.
func (Kind) ConfigSpec() config.Spec {
	return config.Spec{Type: "parquet", Summary: "Hive-partitioned Parquet files in a local directory or an S3 bucket.",
		New: func() any { return &Config{} }}
}

// MaxPutObject is the largest object one S3 PutObject may upload (5 GiB).
const MaxPutObject = config.Size(5 << 30)

// MaxS3FlushBytes is the largest flush.bytes of an s3:// lake: a flush happens once
// the buffered bytes reach the limit, so a file can outgrow it by the batch that
// crossed it; 1 GiB under MaxPutObject leaves room for that.
const MaxS3FlushBytes = MaxPutObject - 1<<30

// Validate checks the lake URL, the S3 endpoint and credentials, and refuses a
// flush.bytes an s3:// lake cannot upload: each flushed file goes up in one
// PutObject, which S3 refuses above 5 GiB, so such a flush would fail on every retry.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("url") {
		if msg := checkLakeURL(c.URL); msg != "" {
			v.Errorf("url", "%s", msg)
		}
	}
	if v.Set("s3.endpoint") {
		if msg := checkEndpoint(c.S3.Endpoint); msg != "" {
			v.Errorf("s3.endpoint", "%s", msg)
		}
	}
	if (c.S3.AccessKeyID == "") != (c.S3.SecretAccessKey == "") {
		v.Errorf("s3", "set both access_key_id and secret_access_key, or neither (to use the AWS credential chain)")
	}
	if f := v.Flush(); f != nil && strings.HasPrefix(c.URL, "s3://") && f.Bytes > MaxS3FlushBytes {
		v.Errorf("flush.bytes", "%s is too much for an s3:// lake: each file is uploaded with one PutObject, which S3 refuses above %s, and a file can outgrow the limit by one batch; set bytes to %s or less (files of 128MiB-1GiB read best)",
			f.Bytes, MaxPutObject, MaxS3FlushBytes)
	}
}

// Claims: two connectors in one lake tree overwrite or mix each other's files.
func (c *Config) Claims(connector string) []config.Claim {
	if checkLakeURL(c.URL) != "" {
		return nil
	}
	return []config.Claim{{Key: "url", What: "lake", Value: c.URL, Identity: c.lakeKey(), Tree: true,
		Advice: fmt.Sprintf("two connectors in one lake tree overwrite or mix each other's files: give each connector its own url (e.g. .../%s)", connector)}}
}

// lakeKey is the lake URL reduced to a comparable path: the S3 endpoint and bucket, or
// the local directory, then the cleaned prefix.
func (c *Config) lakeKey() string {
	if p, ok := strings.CutPrefix(c.URL, "file://"); ok {
		return "file:" + filepath.Clean(p)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c.URL
	}
	prefix := strings.Trim(filepath.Clean("/"+u.Path), "/")
	key := "s3:" + strings.TrimRight(c.S3.Endpoint, "/") + "|" + u.Host
	if prefix != "" {
		key += "/" + prefix
	}
	return key
}

// settings are what the S3 client needs of the s3 section.
func (s S3) settings() s3client.Settings { return s3client.Settings(s) }

func checkLakeURL(s string) string {
	const want = "must be file:///absolute/path or s3://bucket/prefix"
	switch {
	case strings.HasPrefix(s, "file://"):
		p := strings.TrimPrefix(s, "file://")
		if !strings.HasPrefix(p, "/") {
			return fmt.Sprintf("%s: %q is not an absolute path (file:// is followed by /path, so three slashes)", want, p)
		}
		return ""
	case strings.HasPrefix(s, "s3://"):
		u, err := url.Parse(s)
		if err != nil {
			return want + ": " + config.URLProblem(err)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
			return want + ": no user, port, query or fragment (set the endpoint under s3:)"
		}
		if !validBucket(u.Host) {
			return fmt.Sprintf("%s: %q is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')", want, u.Host)
		}
		return ""
	}
	return fmt.Sprintf("%s, got %q", want, s)
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		edge := i == 0 || i == len(b)-1
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || !edge && (c == '.' || c == '-')) {
			return false
		}
	}
	return true
}

func checkEndpoint(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an http:// or https:// URL, e.g. http://127.0.0.1:9000, got %q", s)
	}
	return ""
}
