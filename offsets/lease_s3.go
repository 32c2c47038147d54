package offsets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/connectd/connectd/record"
)

// An s3:// lease is the object leases/<connector>.json under the store's prefix,
// written only with conditional PUTs: If-None-Match: * creates it, If-Match: <etag>
// renews, releases or takes it over, so of two processes racing exactly one wins
// (the other gets 412). The owner renews it every TTL/3; one that could not renew
// it by TTL-TTL/6 after its last renewal began gives up (Lost) before the expiry it
// wrote. Another process takes an expired lease only TTL/3 after that expiry, which
// covers clocks that disagree by less than that (see docs/operations.md); or at once
// when the holder was a process of the same kernel and pid namespace that is gone.
//
// The fence is the offset object itself: every commit writes it with If-Match on
// the etag its owner last saw, and a new owner rewrites it (with its generation)
// right after taking the lease, so the old owner's next commit gets 412.

// DefaultLeaseTTL is how long an s3:// lease lasts without renewal.
const DefaultLeaseTTL = 30 * time.Second

func (s *S3) leaseKey(connector string) string {
	return s.key("leases/" + escapeName(connector) + fileExt)
}

func (s *S3) ttl() time.Duration {
	if s.loc.LeaseTTL > 0 {
		return s.loc.LeaseTTL
	}
	return DefaultLeaseTTL
}

// getTagged returns an object's content and etag; nil content when it is absent.
func (s *S3) getTagged(ctx context.Context, key string) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)})
	if notFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", err
	}
	if data == nil {
		data = []byte{}
	}
	return data, aws.ToString(out.ETag), nil
}

// errPrecondition is a conditional write that lost: the object changed (or was
// created, or removed) since the etag the writer knew.
var errPrecondition = errors.New("the object changed since it was read (412)")

// putIf writes an object only if it still has etag ("" : only if it does not
// exist), and returns its new etag.
func (s *S3) putIf(ctx context.Context, key string, data []byte, etag string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.loc.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/json"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		var re *awshttp.ResponseError
		// 412: the condition failed; 409: a concurrent conditional write won; 404: an
		// If-Match on an object removed meanwhile.
		if errors.As(err, &re) && (re.HTTPStatusCode() == 412 || re.HTTPStatusCode() == 409 || re.HTTPStatusCode() == 404) {
			return "", fmt.Errorf("%w: %v", errPrecondition, err)
		}
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// readLease returns the connector's lease object and its etag ("" when absent).
func (s *S3) readLease(ctx context.Context, connector string) (leaseRecord, string, error) {
	data, etag, err := s.getTagged(ctx, s.leaseKey(connector))
	if err != nil || data == nil {
		return leaseRecord{}, "", err
	}
	var r leaseRecord
	if err := json.Unmarshal(data, &r); err != nil {
		// A torn or hand-edited lease is taken over like an expired one; its etag
		// still makes the takeover conditional.
		return leaseRecord{Connector: connector}, etag, nil
	}
	return r, etag, nil
}

// takeable reports whether a lease record may be taken over at now.
func (s *S3) takeable(r leaseRecord, now time.Time) bool {
	if r.Released || r.Expires == "" || deadHere(r.Holder) {
		return true
	}
	exp, err := time.Parse(time.RFC3339Nano, r.Expires)
	if err != nil {
		return true
	}
	return now.After(exp.Add(s.ttl() / 3))
}

// Acquire creates or takes over the connector's lease object, then rewrites the
// offset object with the new generation (the fence).
func (s *S3) Acquire(ctx context.Context, connector string, holder Holder) (Lease, error) {
	if err := checkName(connector); err != nil {
		return nil, err
	}
	where := "s3://" + s.loc.Bucket + "/" + s.leaseKey(connector)
	prev, etag, err := s.readLease(ctx, connector)
	if err != nil {
		return nil, fmt.Errorf("offsets: lease %s: read %s: %w", connector, where, err)
	}
	if etag != "" && !s.takeable(prev, time.Now()) {
		exp, _ := time.Parse(time.RFC3339Nano, prev.Expires)
		return nil, &HeldError{Connector: connector, Holder: prev.Holder, Expires: exp}
	}
	l := &s3Lease{s: s, connector: connector, holder: holder, lostSignal: newLostSignal(), stop: make(chan struct{}), done: make(chan struct{})}
	l.gen = prev.Generation + 1
	began := time.Now()
	newTag, err := s.putIf(ctx, s.leaseKey(connector), l.record(began), etag)
	if errors.Is(err, errPrecondition) {
		// Another process took it between our read and our write.
		now, _, rerr := s.readLease(ctx, connector)
		if rerr != nil {
			return nil, fmt.Errorf("offsets: lease %s: read %s: %w", connector, where, rerr)
		}
		exp, _ := time.Parse(time.RFC3339Nano, now.Expires)
		return nil, &HeldError{Connector: connector, Holder: now.Holder, Expires: exp}
	}
	if err != nil {
		return nil, fmt.Errorf("offsets: lease %s: write %s: %w", connector, where, err)
	}
	l.leaseTag = newTag
	l.deadline = began.Add(s.ttl() - s.ttl()/6)
	if err := l.fence(ctx); err != nil {
		close(l.done) // no renewals were started
		_ = l.Release(context.WithoutCancel(ctx))
		return nil, err
	}
	go l.renew()
	return l, nil
}

type s3Lease struct {
	s         *S3
	connector string
	holder    Holder
	gen       int64
	*lostSignal

	mu        sync.Mutex
	leaseTag  string          // the lease object's etag, as this owner last wrote it
	offsetTag string          // the offset object's etag, as this owner last wrote it
	committed record.Position // what the offset object holds
	deadline  time.Time       // give up (Lost) at this time unless renewed
	released  bool

	stop, done chan struct{}
	stopOnce   sync.Once
}

// stopRenewing ends the renewals and waits for them to end.
func (l *s3Lease) stopRenewing() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

func (l *s3Lease) Generation() int64 { return l.gen }

// record is the lease object's content for a renewal that began at began.
func (l *s3Lease) record(began time.Time) []byte {
	data, _ := json.MarshalIndent(leaseRecord{
		Connector:  l.connector,
		Generation: l.gen,
		Holder:     l.holder,
		Expires:    began.Add(l.s.ttl()).UTC().Format(time.RFC3339Nano),
	}, "", "  ")
	return append(data, '\n')
}

// fence rewrites the offset object with this owner's generation, so that the
// previous owner's next conditional commit fails. It retries when that owner
// commits meanwhile (it may not know yet that it lost).
func (l *s3Lease) fence(ctx context.Context) error {
	key := l.s.offsetKey(l.connector)
	where := "s3://" + l.s.loc.Bucket + "/" + key
	for try := 0; ; try++ {
		data, etag, err := l.s.getTagged(ctx, key)
		if err != nil {
			return fmt.Errorf("offsets: lease %s: read %s: %w", l.connector, where, err)
		}
		var pos record.Position
		if data != nil {
			if pos, _, err = decodeOffsetGen(l.connector, "object "+where, data); err != nil {
				return err
			}
		}
		var out []byte
		if pos == nil {
			out, err = encodeMarker(l.connector, l.gen)
		} else {
			out, err = encodeOffsetGen(l.connector, pos, l.gen)
		}
		if err != nil {
			return err
		}
		tag, err := l.s.putIf(ctx, key, out, etag)
		if errors.Is(err, errPrecondition) && try < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("offsets: lease %s: fence %s: %w", l.connector, where, err)
		}
		l.offsetTag, l.committed = tag, pos
		return nil
	}
}

// renew keeps the lease until Release, or declares it lost once it could not be
// renewed before the deadline or another process took it.
func (l *s3Lease) renew() {
	defer close(l.done)
	every := l.s.ttl() / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		l.mu.Lock()
		deadline := l.deadline
		l.mu.Unlock()
		wait := min(every, time.Until(deadline))
		t.Reset(max(wait, 0))
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if time.Now().After(deadline) {
			l.lose(&LostError{Connector: l.connector, Cause: fmt.Errorf("could not renew the lease in s3://%s/%s before it expired", l.s.loc.Bucket, l.s.leaseKey(l.connector))})
			return
		}
		if err := l.renewOnce(deadline); err != nil {
			if IsLost(err) {
				l.lose(err)
				return
			}
			// A transient failure: try again at once-ish, until the deadline.
			every = max(l.s.ttl()/15, 100*time.Millisecond)
			continue
		}
		every = l.s.ttl() / 3
	}
}

func (l *s3Lease) renewOnce(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	l.mu.Lock()
	tag := l.leaseTag
	l.mu.Unlock()
	newTag, err := l.s.putIf(ctx, l.s.leaseKey(l.connector), l.record(began), tag)
	if errors.Is(err, errPrecondition) {
		return l.lostTo(ctx, err)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.leaseTag = newTag
	l.deadline = began.Add(l.s.ttl() - l.s.ttl()/6)
	l.mu.Unlock()
	return nil
}

// lostTo is the *LostError naming whoever holds the lease now.
func (l *s3Lease) lostTo(ctx context.Context, cause error) error {
	r, _, err := l.s.readLease(ctx, l.connector)
	if err != nil || r.Released || (r.Holder.Host == "" && r.Holder.PID == 0) {
		return &LostError{Connector: l.connector, Cause: cause}
	}
	return &LostError{Connector: l.connector, Holder: r.Holder, Cause: cause}
}

func (l *s3Lease) Load(ctx context.Context, connector string) (record.Position, error) {
	if err := checkConnector(l.connector, connector); err != nil {
		return nil, err
	}
	return l.s.Load(ctx, connector)
}

// Commit writes the offset object with If-Match on the etag this owner last wrote:
// if another process took the lease since, the object has its generation and
// another etag, and the write fails with 412.
func (l *s3Lease) Commit(ctx context.Context, connector string, pos record.Position) error {
	if err := checkConnector(l.connector, connector); err != nil {
		return err
	}
	if err := l.Err(); err != nil {
		return err
	}
	data, err := encodeOffsetGen(connector, pos, l.gen)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := checkForward(connector, l.committed, pos); err != nil {
		return err
	}
	key := l.s.offsetKey(connector)
	tag, err := l.s.putIf(ctx, key, data, l.offsetTag)
	if errors.Is(err, errPrecondition) {
		lost := l.lostTo(ctx, err)
		l.lose(lost)
		return lost
	}
	if err != nil {
		return fmt.Errorf("offsets: commit %s to s3://%s/%s: %w", connector, l.s.loc.Bucket, key, err)
	}
	l.offsetTag, l.committed = tag, pos
	return nil
}

// Release stops the renewals and marks the lease object released, so that the
// next process takes it at once instead of waiting for the expiry.
func (l *s3Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	l.stopRenewing()
	wasLost := l.Err() != nil
	l.lose(&LostError{Connector: l.connector, Cause: errors.New("the lease was released")})
	if wasLost {
		return nil // someone else's now: leave their object alone
	}
	l.mu.Lock()
	tag := l.leaseTag
	l.mu.Unlock()
	data, _ := json.MarshalIndent(leaseRecord{Connector: l.connector, Generation: l.gen, Holder: l.holder, Released: true}, "", "  ")
	if _, err := l.s.putIf(ctx, l.s.leaseKey(l.connector), append(data, '\n'), tag); err != nil && !errors.Is(err, errPrecondition) {
		return fmt.Errorf("offsets: release %s: %w (the next owner waits for the lease to expire)", l.connector, err)
	}
	return nil
}
