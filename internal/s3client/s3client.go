// Package s3client builds the S3 client that the parquet destination and the s3://
// offsets store share, so that both read the same settings the same way.
package s3client

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Settings say how to reach S3 or an S3-compatible server.
type Settings struct {
	Endpoint        string // http(s)://host:port of an S3-compatible server; empty for AWS
	Region          string
	PathStyle       bool
	AccessKeyID     string // with SecretAccessKey: static credentials instead of the AWS chain
	SecretAccessKey string
}

// New returns a client for cfg. Credentials are cfg's static keys when given, else
// the standard AWS chain (AWS_* variables, shared config, web identity); the region
// defaults to us-east-1. opts are applied after connectd's own.
func New(ctx context.Context, cfg Settings, opts ...func(*awsconfig.LoadOptions) error) (*s3.Client, error) {
	var all []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		all = append(all, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" {
		all = append(all, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Only send checksums S3 requires: S3-compatible servers differ in which
		// of the newer checksum algorithms they accept.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}
