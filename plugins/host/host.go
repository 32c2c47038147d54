// Package host runs connectd's side of the plugin protocol: it implements
// connector.SourceKind and connector.DestinationKind for `type: plugin` by starting
// the plugin's executable (hashicorp/go-plugin over gRPC), checking its SHA-256 pin
// and protocol version, forwarding its log into connectd's, and turning everything a
// plugin can do wrong (crash, hang, malformed data) into an error of its connector
// alone: transient, so that the supervisor restarts it from the committed offset, or
// permanent (connector.Permanent) when no restart can help (bad config, wrong pin,
// wrong protocol version).
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/plugins/internal/wire"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
)

// ProtocolVersion is the plugin protocol version this connectd speaks.
const ProtocolVersion = wire.ProtocolVersion

// Timeouts bound how long connectd waits for a plugin before it declares the plugin
// hung, kills its process and fails the connector (which the supervisor restarts).
// Zero fields take the defaults; a plugin's `timeouts:` in the config overrides them.
type Timeouts struct {
	Start time.Duration // starting the process and the handshake (default 30s)
	Call  time.Duration // one call: open, ack, check, close, or sending one batch (default 30s)
	Flush time.Duration // a destination's flush (default 5m)
	// Idle is how long a source's Read stream may carry nothing, not even a
	// heartbeat, which the plugin is asked to send every Idle/5 (default 30s).
	Idle time.Duration
}

// Defaults for Timeouts.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultFlushTimeout = 5 * time.Minute
	DefaultIdleTimeout  = 30 * time.Second
)

func (t Timeouts) withDefaults() Timeouts {
	if t.Start <= 0 {
		t.Start = DefaultStartTimeout
	}
	if t.Call <= 0 {
		t.Call = DefaultCallTimeout
	}
	if t.Flush <= 0 {
		t.Flush = DefaultFlushTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	return t
}

// over returns t with the fields that a plugin's own `timeouts:` sets replaced.
func (t Timeouts) over(pc ConfigTimeouts) Timeouts {
	for _, f := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&t.Start, pc.Start}, {&t.Call, pc.Call}, {&t.Flush, pc.Flush}, {&t.Idle, pc.Idle}} {
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	return t
}

// Locate returns the executable a plugin config names: path as given, or name
// looked up in dir (config plugins.dir).
func Locate(dir string, pc *Config) (string, error) {
	if pc == nil {
		return "", errors.New("no plugin settings (name or path)")
	}
	path := pc.Path
	if path == "" {
		if pc.Name == "" {
			return "", errors.New("a plugin needs name (looked up in plugins.dir) or path")
		}
		if dir == "" {
			return "", fmt.Errorf("plugin %q: plugins.dir is not set; set it, or give the plugin's path", pc.Name)
		}
		path = filepath.Join(dir, pc.Name)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("plugin executable: %w", err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("plugin executable %s: not an executable file", path)
	}
	return path, nil
}

// pluginName is how logs and errors call a plugin: its config name or file name.
func pluginName(pc *Config) string {
	if pc.Name != "" {
		return pc.Name
	}
	return filepath.Base(pc.Path)
}

// configJSON is the plugin's config section as the protocol carries it.
func configJSON(pc *Config) ([]byte, error) {
	if pc.Config == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(pc.Config)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: config: %w", pluginName(pc), err)
	}
	return b, nil
}

// conn is one running plugin process.
type conn struct {
	name   string
	path   string
	client *plugin.Client
	log    *slog.Logger
	t      Timeouts
	spec   *pb.SpecResponse
	hung   atomic.Pointer[hang]
}

// hang records the call a plugin did not answer in time.
type hang struct {
	op      string
	timeout time.Duration
}

var incompatible = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (\d+)`)

// launch starts the plugin executable, checks its pin, negotiates the protocol and
// dispenses kind (wire.KindSource or wire.KindDestination). The plugin's own
// timeouts (config `timeouts:`) take precedence over t.
func launch(ctx context.Context, dir string, pc *Config, kind string, log *slog.Logger, t Timeouts) (*conn, any, error) {
	path, err := Locate(dir, pc)
	if err != nil {
		return nil, nil, connector.Permanent(err)
	}
	name := pluginName(pc)
	t = t.over(pc.Timeouts).withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("plugin", name)
	var sec *plugin.SecureConfig
	if pc.SHA256 != "" {
		sum, err := hex.DecodeString(strings.ToLower(pc.SHA256))
		if err != nil || len(sum) != sha256.Size {
			return nil, nil, connector.Permanent(fmt.Errorf("plugin %s: sha256 %q: want 64 hex digits", name, pc.SHA256))
		}
		sec = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	var set plugin.PluginSet
	if kind == wire.KindSource {
		set = plugin.PluginSet{kind: &wire.SourcePlugin{}}
	} else {
		set = plugin.PluginSet{kind: &wire.DestinationPlugin{}}
	}
	cmd := exec.Command(path)
	cmd.Env = processEnv(pc.Env, os.LookupEnv, log)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{wire.ProtocolVersion: set},
		Cmd:              cmd,
		SkipHostEnv:      true,
		SecureConfig:     sec,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newHCLog(log),
		StartTimeout:     t.Start,
		SyncStdout:       newLineWriter(log, slog.LevelInfo, "plugin stdout"),
		SyncStderr:       newLineWriter(log, slog.LevelWarn, "plugin stderr"),
		GRPCDialOptions: append([]grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes))}, wire.DialOptions()...),
	})
	c := &conn{name: name, path: path, client: client, log: log, t: t}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, c.startError(err, pc)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		client.Kill()
		return nil, nil, fmt.Errorf("plugin %s: %s does not serve a %s: %w", name, path, kind, err)
	}
	var specFn func(context.Context, *pb.SpecRequest, ...grpc.CallOption) (*pb.SpecResponse, error)
	switch cl := raw.(type) {
	case pb.SourceClient:
		specFn = cl.Spec
	case pb.DestinationClient:
		specFn = cl.Spec
	}
	err = c.unary(ctx, "spec", t.Call, func(ctx context.Context) (err error) {
		c.spec, err = specFn(ctx, &pb.SpecRequest{})
		return err
	})
	if err != nil {
		client.Kill()
		if status.Code(errors.Unwrap(err)) == codes.Unimplemented || strings.Contains(err.Error(), "unknown service") {
			return nil, nil, connector.Permanent(fmt.Errorf("plugin %s: %s is not a %s plugin: %w", name, path, kind, err))
		}
		return nil, nil, err
	}
	if c.spec.GetKind() != kind {
		client.Kill()
		return nil, nil, connector.Permanent(fmt.Errorf("plugin %s: %s is a %q plugin, not a %s", name, path, c.spec.GetKind(), kind))
	}
	if v := c.spec.GetProtocolVersion(); v != wire.ProtocolVersion {
		client.Kill()
		return nil, nil, connector.Permanent(versionError(name, int(v)))
	}
	log.Info("plugin started", "path", path, "plugin_name", c.spec.GetName(), "plugin_version", c.spec.GetVersion(),
		"sdk", c.spec.GetSdk(), "protocol", wire.ProtocolVersion)
	return c, raw, nil
}

func versionError(name string, theirs int) error {
	return fmt.Errorf("plugin %s speaks plugin protocol version %d, but this connectd speaks version %d: rebuild the plugin against a matching plugins/sdk, or run a connectd that speaks version %d",
		name, theirs, wire.ProtocolVersion, theirs)
}

// startError explains why a plugin did not start. A wrong pin or protocol version
// is permanent: restarting the same executable cannot fix it.
func (c *conn) startError(err error, pc *Config) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		have := "unknown"
		if f, ferr := os.Open(c.path); ferr == nil {
			h := sha256.New()
			if _, ferr := io.Copy(h, f); ferr == nil {
				have = hex.EncodeToString(h.Sum(nil))
			}
			_ = f.Close()
		}
		return connector.Permanent(fmt.Errorf("plugin %s: refusing to run %s: its sha256 is %s, but the config pins %s",
			c.name, c.path, have, strings.ToLower(pc.SHA256)))
	}
	if m := incompatible.FindStringSubmatch(err.Error()); m != nil {
		theirs, _ := strconv.Atoi(m[1])
		return connector.Permanent(versionError(c.name, theirs))
	}
	return fmt.Errorf("plugin %s: start %s: %w", c.name, c.path, err)
}

// unary runs one call with a deadline. A plugin that does not answer in time is
// killed: a hung process must not hold its connector, nor linger.
func (c *conn) unary(ctx context.Context, op string, d time.Duration, f func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := f(cctx)
	// The deadline also travels to the plugin, whose gRPC server may reset the
	// stream a moment before our own context's timer has fired: the clock decides.
	deadline, _ := cctx.Deadline()
	if err != nil && ctx.Err() == nil && (errors.Is(cctx.Err(), context.DeadlineExceeded) || !time.Now().Before(deadline)) {
		c.killHung(op, d)
	}
	return c.wrap(ctx, op, err)
}

// watch kills the plugin if stop is not called within d: for stream operations,
// which a deadline on the call's context cannot bound one message at a time.
func (c *conn) watch(op string, d time.Duration) (stop func()) {
	t := time.AfterFunc(d, func() { c.killHung(op, d) })
	return func() { t.Stop() }
}

func (c *conn) killHung(op string, d time.Duration) {
	if c.hung.CompareAndSwap(nil, &hang{op: op, timeout: d}) {
		c.log.Error("plugin did not answer in time; killing it", "call", op, "timeout", d)
	}
	c.killProcess()
}

// killProcess ends the plugin at once, without the graceful shutdown that a hung
// plugin would not answer.
func (c *conn) killProcess() {
	if rc := c.client.ReattachConfig(); rc != nil && rc.Pid > 0 {
		if p, err := os.FindProcess(rc.Pid); err == nil {
			_ = p.Kill()
		}
	}
}

// wrap turns a call's error into one that names the plugin and the call, and says
// whether it hung, crashed or refused.
func (c *conn) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if h := c.hung.Load(); h != nil {
		return fmt.Errorf("plugin %s: %s: no answer within %s; the plugin was killed", c.name, h.op, h.timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("plugin %s: %s: %w", c.name, op, ctx.Err())
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("plugin %s: %s: %w", c.name, op, err)
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled, codes.Internal:
		if c.exited(500 * time.Millisecond) {
			return fmt.Errorf("plugin %s: %s: the plugin process exited unexpectedly (its stderr is in the log above): %s", c.name, op, st.Message())
		}
	case codes.InvalidArgument, codes.FailedPrecondition, codes.Unimplemented:
		return connector.Permanent(fmt.Errorf("plugin %s: %s", c.name, st.Message()))
	}
	return fmt.Errorf("plugin %s: %s: %s", c.name, op, st.Message())
}

// exited reports whether the plugin process has ended, waiting up to d: a broken
// connection is seen a moment before the process is reaped.
func (c *conn) exited(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if c.client.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the plugin: the close call (if it is alive), then the process.
func (c *conn) stop(ctx context.Context, closeFn func(context.Context, *pb.CloseRequest, ...grpc.CallOption) (*pb.CloseResponse, error)) error {
	var err error
	if !c.client.Exited() && c.hung.Load() == nil {
		err = c.unary(ctx, "close", c.t.Call, func(ctx context.Context) error {
			_, err := closeFn(ctx, &pb.CloseRequest{})
			return err
		})
	}
	c.client.Kill()
	return err
}
