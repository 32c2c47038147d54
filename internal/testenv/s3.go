package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

// versitygwModule is the gateway installed when none is found; pinned so CI on a
// fresh clone builds the same server the tests were written against.
const versitygwModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3 is an S3-compatible server (versitygw with its posix backend) started by StartS3.
type S3 struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root user's static credentials.
	AccessKey, SecretKey string
	// Region is the region the server signs for.
	Region string
	// Dir is the server's temp directory; buckets are folders under Dir/data.
	Dir string

	bin     string
	port    int
	logPath string
	proc    *server
	paused  bool
}

// StartS3 starts versitygw on a free loopback port, storing objects in a temp
// directory, and waits until it answers HTTP. On failure nothing is left running.
func StartS3(ctx context.Context) (*S3, error) {
	bin, err := versitygwBinary(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("connectd-s3-")
	if err != nil {
		return nil, err
	}
	s := &S3{
		AccessKey: "connectd-test-access",
		SecretKey: "connectd-test-secret-key",
		Region:    "us-east-1",
		Dir:       dir,
		bin:       bin,
		logPath:   filepath.Join(dir, "versitygw.log"),
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: s3: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, lastErr = freePort(); lastErr != nil {
			break
		}
		s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", s.port)
		if lastErr = s.start(ctx); lastErr == nil {
			return s, nil
		}
		if !strings.Contains(logTail(s.logPath, 20), "address already in use") {
			break
		}
	}
	s.Stop()
	return nil, lastErr
}

func (s *S3) start(ctx context.Context) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: s3: open log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin,
		"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", s.port), "--quiet",
		"posix", filepath.Join(s.Dir, "data"))
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	proc, err := launch(cmd)
	if err != nil {
		return fmt.Errorf("testenv: s3: start %s: %w", s.bin, err)
	}
	s.proc = proc
	s.paused = false
	client := &http.Client{Timeout: 2 * time.Second}
	if err := waitReady(ctx, proc, 60*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil // any HTTP answer (403 without a signature) means it serves
	}); err != nil {
		proc.kill()
		return fmt.Errorf("testenv: s3: start on port %d: %w\nserver log:\n%s", s.port, err, logTail(s.logPath, 30))
	}
	return nil
}

// Client returns an S3 client for the server: static credentials, path-style
// addressing, checksums only where the API requires them.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket.
func (s *S3) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("testenv: s3: create bucket %s: %w", name, err)
	}
	return nil
}

// Download copies every object of bucket whose key starts with prefix to
// localDir/<key>, creating folders along the key's slashes, so a Hive-partitioned
// lake can be read back from local files.
func (s *S3) Download(ctx context.Context, bucket, prefix, localDir string) error {
	client := s.Client()
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	root, err := filepath.Abs(localDir)
	if err != nil {
		return fmt.Errorf("testenv: s3: download to %s: %w", localDir, err)
	}
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("testenv: s3: list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if strings.HasSuffix(key, "/") {
				continue // a folder marker, not data
			}
			dst := filepath.Join(root, filepath.FromSlash(key))
			if !strings.HasPrefix(dst, root+string(filepath.Separator)) {
				return fmt.Errorf("testenv: s3: key %q escapes %s", key, localDir)
			}
			if err := s.downloadObject(ctx, client, bucket, key, dst); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *S3) downloadObject(ctx context.Context, client *s3.Client, bucket, key, dst string) error {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("testenv: s3: get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("testenv: s3: download %s: %w", key, err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("testenv: s3: download %s: %w", key, err)
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		return fmt.Errorf("testenv: s3: download s3://%s/%s: %w", bucket, key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("testenv: s3: download %s: %w", key, err)
	}
	return nil
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing answers,
// like a hung network or server. Resume undoes it.
func (s *S3) Pause() error {
	if s.proc == nil || !s.proc.running() {
		return errors.New("testenv: s3: pause: server not running")
	}
	if err := syscall.Kill(s.proc.pid(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("testenv: s3: pause: %w", err)
	}
	s.paused = true
	// SIGSTOP reaches each thread on its way back to user space; until all have
	// stopped, a request in flight may still be answered.
	if err := waitAllThreadsStopped(s.proc.pid(), 10*time.Second); err != nil {
		return fmt.Errorf("testenv: s3: pause: %w", err)
	}
	return nil
}

// Resume continues a server frozen by Pause.
func (s *S3) Resume() error {
	if s.proc == nil || !s.proc.running() {
		return errors.New("testenv: s3: resume: server not running")
	}
	if err := syscall.Kill(s.proc.pid(), syscall.SIGCONT); err != nil {
		return fmt.Errorf("testenv: s3: resume: %w", err)
	}
	s.paused = false
	return nil
}

// Restart stops the server and starts it again on the same port and directory, so
// objects and buckets survive and clients keep their endpoint.
func (s *S3) Restart(ctx context.Context) error {
	if err := s.halt(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Stop ends the server and removes its directory. It is safe to call more than once.
func (s *S3) Stop() error {
	err := s.halt()
	if rerr := os.RemoveAll(s.Dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("testenv: s3: remove %s: %w", s.Dir, rerr))
	}
	return err
}

func (s *S3) halt() error {
	if s.proc == nil || !s.proc.running() {
		return nil
	}
	if s.paused {
		// A stopped process would not act on SIGTERM until continued.
		_ = syscall.Kill(s.proc.pid(), syscall.SIGCONT)
		s.paused = false
	}
	if err := s.proc.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return fmt.Errorf("testenv: s3: stop: %w", err)
	}
	return nil
}

// versitygwBinary finds versitygw on PATH, in GOPATH/bin or in the repo's bin/, and
// otherwise installs the pinned version into the repo's bin/.
func versitygwBinary(ctx context.Context) (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	root, rootErr := repoRoot()
	if rootErr == nil {
		dirs = append(dirs, filepath.Join(root, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if rootErr != nil {
		return "", fmt.Errorf("testenv: s3: versitygw not found and nowhere to install it: %w", rootErr)
	}
	gobin := filepath.Join(root, "bin")
	bin := filepath.Join(gobin, "versitygw")
	if err := os.MkdirAll(gobin, 0o755); err != nil {
		return "", fmt.Errorf("testenv: s3: install versitygw: %w", err)
	}
	// Test packages run in parallel and may all find the gateway missing; one
	// installs while the others wait for it.
	lock, err := os.OpenFile(filepath.Join(gobin, ".versitygw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("testenv: s3: install versitygw: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("testenv: s3: install versitygw: lock: %w", err)
	}
	defer func() { _ = unix.Flock(int(lock.Fd()), unix.LOCK_UN) }()
	if st, err := os.Stat(bin); err == nil && !st.IsDir() {
		return bin, nil
	}
	cmd := exec.CommandContext(ctx, "go", "install", versitygwModule)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	cmd.Dir = os.TempDir() // outside the module: install must not touch go.mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: s3: go install %s: %w\n%s", versitygwModule, err, out)
	}
	return bin, nil
}
