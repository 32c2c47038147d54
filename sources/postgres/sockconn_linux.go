//go:build linux

package postgres

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readBuf is how much one read(2) takes at most: the protocol reader asks for 8 KiB
// at a time, a millisecond of a busy walsender's output is more.
const readBuf = 64 << 10

// pollConn is the replication connection's socket, read and written with plain
// system calls outside Go's network poller, the way libpq-based clients do.
//
// Why: a walsender sends each pgoutput message as soon as it is decoded, so a reader
// that keeps up with a stream of small transactions finds a message or two per read.
// Through the network poller each of those costs a read that fails with EAGAIN, a
// park, an epoll wake-up of another thread and a hand-off back, several times the
// CPU of decoding the message, most of it in the kernel. The poller's epoll set also
// wakes a thread on every segment that arrives, whether or not anyone reads. Here a
// read that finds nothing waits in poll(2) on its own thread, woken once, and while
// streaming (coalesce) a read after one that emptied the socket first sleeps
// coalesceWait, so that the segments arriving meanwhile are taken in one read with
// no wake-up each.
type pollConn struct {
	fd           int
	network      string
	wake         int // an eventfd that ends a poll when a deadline moves
	waiting      atomic.Int32
	laddr, raddr net.Addr
	// Reads and writes hold rw for reading; Close takes it for writing, so the
	// descriptor is never closed (and its number reused) under a call in progress.
	rw       sync.RWMutex
	wmu      sync.Mutex // one writer at a time: a message is never interleaved
	closed   atomic.Bool
	rdl, wdl atomic.Int64 // deadlines in Unix nanoseconds, 0 for none
	coalesce atomic.Bool
	drained  atomic.Bool // the last read returned less than it had room for
	// buf[r:w] is read from the socket and not yet returned; reads only, one at a
	// time (the protocol reader's).
	buf  []byte
	r, w int
}

// detach moves a freshly dialed connection's socket out of the network poller. A
// connection whose descriptor cannot be had is returned as it is.
func detach(network string, c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return c
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(fd)
		return c
	}
	// O_NONBLOCK belongs to the socket (Go set it already): reads return EAGAIN
	// instead of blocking past a deadline.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		_ = unix.Close(wake)
		return c
	}
	p := &pollConn{fd: fd, network: network, wake: wake, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
	// Closing the original takes it out of the poller's epoll set; the socket
	// lives on in the duplicate.
	_ = c.Close()
	return p
}

// coalesce turns the waiting before reads on or off on a replication connection's
// socket; a no-op on other sockets.
func coalesce(c net.Conn, on bool) {
	if t, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
		c = t.NetConn()
	}
	if p, ok := c.(*pollConn); ok {
		p.coalesce.Store(on)
	}
}

func (p *pollConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if p.r < p.w {
		n := copy(b, p.buf[p.r:p.w])
		p.r += n
		return n, nil
	}
	p.rw.RLock()
	defer p.rw.RUnlock()
	if p.drained.Load() && p.coalesce.Load() {
		// A sleep in a system call, not time.Sleep: the scheduler sees this
		// thread busy, so the process does not go idle and wake up (and its
		// sysmon thread with it) once per wait.
		ts := unix.NsecToTimespec(coalesceWait.Nanoseconds())
		_ = unix.Nanosleep(&ts, nil)
	}
	if p.buf == nil {
		p.buf = make([]byte, readBuf)
	}
	for {
		if p.closed.Load() {
			return 0, p.opErr("read", net.ErrClosed)
		}
		n, err := unix.Read(p.fd, p.buf)
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			p.drained.Store(n < len(p.buf))
			p.r, p.w = copy(b, p.buf[:n]), n
			return p.r, nil
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := p.wait(unix.POLLIN, &p.rdl); err != nil {
				return 0, p.opErr("read", err)
			}
		default:
			return 0, p.opErr("read", os.NewSyscallError("read", err))
		}
	}
}

func (p *pollConn) Write(b []byte) (int, error) {
	p.rw.RLock()
	defer p.rw.RUnlock()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	done := 0
	for done < len(b) {
		if p.closed.Load() {
			return done, p.opErr("write", net.ErrClosed)
		}
		n, err := unix.Write(p.fd, b[done:])
		if n > 0 {
			done += n
		}
		switch {
		case err == nil, err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := p.wait(unix.POLLOUT, &p.wdl); err != nil {
				return done, p.opErr("write", err)
			}
		default:
			return done, p.opErr("write", os.NewSyscallError("write", err))
		}
	}
	return done, nil
}

// wait polls for events until they come, the deadline passes or the conn closes.
func (p *pollConn) wait(events int16, deadline *atomic.Int64) error {
	// Counted before the deadline is read: a deadline set meanwhile either is
	// seen here or sees the count and ends the poll (setDeadline).
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	for {
		if p.closed.Load() {
			return net.ErrClosed
		}
		timeout := -1
		if d := deadline.Load(); d != 0 {
			left := time.Until(time.Unix(0, d))
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			timeout = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: events}, {Fd: int32(p.wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
		if fds[1].Revents != 0 {
			var b [8]byte
			_, _ = unix.Read(p.wake, b[:])
		}
		if fds[0].Revents != 0 {
			// Ready, or an error or hang-up the next read or write reports.
			return nil
		}
	}
}

// setDeadline stores a deadline and ends a poll in progress, which then waits
// with the new one.
func (p *pollConn) setDeadline(d *atomic.Int64, t time.Time) {
	d.Store(unixNano(t))
	if p.waiting.Load() > 0 {
		one := [8]byte{1}
		_, _ = unix.Write(p.wake, one[:])
	}
}

func (p *pollConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: p.network, Source: p.laddr, Addr: p.raddr, Err: err}
}

func (p *pollConn) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Wakes a read or write waiting in poll at once.
	_ = unix.Shutdown(p.fd, unix.SHUT_RDWR)
	p.rw.Lock()
	defer p.rw.Unlock()
	_ = unix.Close(p.wake)
	return unix.Close(p.fd)
}

func (p *pollConn) LocalAddr() net.Addr  { return p.laddr }
func (p *pollConn) RemoteAddr() net.Addr { return p.raddr }

func (p *pollConn) SetDeadline(t time.Time) error {
	p.setDeadline(&p.rdl, t)
	p.setDeadline(&p.wdl, t)
	return nil
}

func (p *pollConn) SetReadDeadline(t time.Time) error {
	p.setDeadline(&p.rdl, t)
	return nil
}

func (p *pollConn) SetWriteDeadline(t time.Time) error {
	p.setDeadline(&p.wdl, t)
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
