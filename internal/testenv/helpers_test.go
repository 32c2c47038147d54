package testenv

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func headBucket(name string) *s3.HeadBucketInput {
	return &s3.HeadBucketInput{Bucket: aws.String(name)}
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
