// Package config loads connectd's YAML config file (docs/configuration.md): environment
// interpolation, *_file secrets, strict decoding (unknown keys are errors) and
// validation, every error naming the file, line and key path.
package config

import "time"

// Config is a whole config file.
type Config struct {
	Offsets    string                `yaml:"offsets"` // file:///dir, s3://bucket/prefix or postgres://host/db
	Server     Server                `yaml:"server"`
	Plugins    Plugins               `yaml:"plugins"`
	Connectors map[string]*Connector `yaml:"connectors"`
	// Path is the file the config was read from.
	Path string `yaml:"-"`
	// Order lists connector names in the order they appear in the file.
	Order []string `yaml:"-"`
}

// Server is the status API and metrics listener.
type Server struct {
	Listen string `yaml:"listen"` // host:port; empty disables the server
}

// Plugins configures external connector executables (plugins/README.md).
type Plugins struct {
	Dir string `yaml:"dir"`
}

// Connector is one source-to-destination pipeline.
type Connector struct {
	Source      Source      `yaml:"source"`
	Destination Destination `yaml:"destination"`
	// Line is where the connector is defined in the file, for later error messages.
	Line int `yaml:"-"`
}

// Source is a connector's source section. Type selects which of the typed sections is
// set; the keys of the others are rejected for that type.
type Source struct {
	Type     string          `yaml:"type"`
	Postgres *PostgresSource `yaml:"-"`
	MySQL    *MySQLSource    `yaml:"-"`
	Plugin   *PluginConfig   `yaml:"-"`
}

// Snapshot modes of a source.
const (
	SnapshotInitial     = "initial"      // snapshot once, then stream
	SnapshotInitialOnly = "initial_only" // snapshot once, then stop
	SnapshotNever       = "never"        // stream only
	SnapshotWhenNeeded  = "when_needed"  // snapshot when there is no usable position
)

// PostgresSource is `type: postgres`.
type PostgresSource struct {
	DSN         string        `yaml:"dsn"`
	Password    string        `yaml:"password"`    // overrides the DSN's; password_file also works
	Tables      []string      `yaml:"tables"`      // schema.table, globs allowed: "public.line_*"
	Slot        string        `yaml:"slot"`        // default connectd_<name>
	Publication string        `yaml:"publication"` // default connectd_<name>
	Snapshot    string        `yaml:"snapshot"`    // default initial
	Heartbeat   time.Duration `yaml:"heartbeat"`   // 0 disables
	// SnapshotChunk is how many rows one snapshot query reads (default 100000).
	SnapshotChunk int `yaml:"snapshot_chunk"`
	// Discovery is how often a running stream looks in the catalog for tables that
	// began to match Tables since it started (default 30s).
	Discovery time.Duration `yaml:"discovery"`
}

// MySQLSource is `type: mysql` (MySQL 8, MariaDB 10.6+).
type MySQLSource struct {
	DSN      string   `yaml:"dsn"`
	Password string   `yaml:"password"`
	ServerID uint32   `yaml:"server_id"`
	Tables   []string `yaml:"tables"`
	Snapshot string   `yaml:"snapshot"`
	// TinyInt1AsBoolean maps signed TINYINT(1) (and BOOL) columns to booleans;
	// by default they stay integers, since TINYINT(1) holds -128..127.
	TinyInt1AsBoolean bool `yaml:"tinyint1_as_boolean"`
}

// PluginConfig is `type: plugin` for a source or destination.
type PluginConfig struct {
	Name   string         `yaml:"name"`   // looked up in plugins.dir
	Path   string         `yaml:"path"`   // or an explicit executable
	SHA256 string         `yaml:"sha256"` // optional pin
	Config map[string]any `yaml:"config"` // passed to the plugin as is
	// Timeouts bound how long connectd waits for the plugin before it kills it and
	// restarts the connector; zero fields take connectd's defaults.
	Timeouts PluginTimeouts `yaml:"timeouts"`
	// Env lists the only environment variables the plugin process gets (besides
	// go-plugin's own and TMPDIR): connectd's secrets stay out of it.
	Env []PluginEnv `yaml:"env"`
}

// PluginEnv is one item of a plugin's `env:`: a NAME taken from connectd's
// environment, or NAME: value set as written (after ${VAR} interpolation).
type PluginEnv struct {
	Name  string
	Value string
	Set   bool // Value was written in the config; else connectd's own value is passed
}

// PluginTimeouts is the optional `timeouts:` of a plugin.
type PluginTimeouts struct {
	Start time.Duration `yaml:"start"` // starting the process and the handshake
	Call  time.Duration `yaml:"call"`  // one call, or sending one batch
	Flush time.Duration `yaml:"flush"` // a destination's flush
	Idle  time.Duration `yaml:"idle"`  // a source's stream carrying nothing, not even a heartbeat
}

// Destination is a connector's destination section.
type Destination struct {
	Type    string              `yaml:"type"`
	Parquet *ParquetDestination `yaml:"-"`
	Plugin  *PluginConfig       `yaml:"-"`
	// Flush is shared by every destination type: when the runtime makes data durable.
	Flush Flush `yaml:"flush"`
}

// ParquetDestination is `type: parquet`.
type ParquetDestination struct {
	URL         string `yaml:"url"` // file:///dir or s3://bucket/prefix
	S3          S3     `yaml:"s3"`
	Compression string `yaml:"compression"` // zstd (default), snappy, gzip, none
}

// S3 holds the settings for s3:// URLs. Credentials default to the AWS chain.
type S3 struct {
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	PathStyle       bool   `yaml:"path_style"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// Flush bounds how much a destination holds before making it durable. Whichever limit
// is reached first triggers the flush.
type Flush struct {
	Rows     int64         `yaml:"rows"`     // default 1000000
	Bytes    Size          `yaml:"bytes"`    // default 128MiB
	Interval time.Duration `yaml:"interval"` // default 60s
}

// Size is a byte count written in human form in YAML: 128MiB, 64KB, 1048576.
type Size int64
