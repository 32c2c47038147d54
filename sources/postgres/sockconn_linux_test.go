//go:build linux

package postgres

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pollPair is a loopback TCP connection whose client side is detached.
func pollPair(t *testing.T) (*pollConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	p, ok := detach("tcp", c).(*pollConn)
	if !ok {
		t.Fatal("detach did not take the socket out of the poller")
	}
	t.Cleanup(func() { p.Close() })
	return p, srv
}

func TestPollConnCarriesBytesBothWaysWithCoalescing(t *testing.T) {
	p, srv := pollPair(t)
	p.coalesce.Store(true)
	want := bytes.Repeat([]byte("pgoutput message "), 20000) // more than readBuf
	go func() {
		for i := 0; i < len(want); i += 1000 {
			_, _ = srv.Write(want[i:min(i+1000, len(want))])
		}
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes read differ from bytes sent")
	}
	if _, err := p.Write([]byte("status")); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 6)
	if _, err := io.ReadFull(srv, back); err != nil || string(back) != "status" {
		t.Fatalf("server read %q, %v", back, err)
	}
	srv.Close()
	if _, err := p.Read(got); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

func TestPollConnReadDeadlineEndsAWaitingRead(t *testing.T) {
	p, _ := pollPair(t)
	if err := p.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := p.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
}

func TestPollConnDeadlineMovedDuringAReadEndsIt(t *testing.T) {
	p, _ := pollPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 10)) // no deadline: waits for data
		done <- err
	}()
	for p.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// What a cancelled stream does (context.AfterFunc in streamer.run).
	if err := p.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want the deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read went on waiting past a deadline set during it")
	}
}

func TestPollConnCloseEndsAWaitingRead(t *testing.T) {
	p, _ := pollPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 10))
		done <- err
	}()
	for p.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read on a closed conn returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read went on waiting after Close")
	}
}
