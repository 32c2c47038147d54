// Package config loads connectd's YAML config file: environment interpolation,
// *_file secrets, strict decoding (unknown keys are errors) and validation, every error
// naming the file, line and key path. It knows the top level (offsets, server,
// plugins, flush, the connectors map); each connector kind declares its own section as
// a tagged struct (see spec.go) that the loader decodes by reflection. The contract is
// docs/configuration.md.
package config

import "time"

// Config is a whole config file.
type Config struct {
	Offsets    string     `yaml:"offsets" required:"true" doc:"Where checkpoints live, with each source's own state: file:///abs/dir or file://relative/dir (relative to the config file), s3://bucket/prefix, or postgres://user@host:5432/db." example:"file:///var/lib/connectd"`
	Server     Server     `yaml:"server" doc:"The status API and metrics listener."`
	Plugins    Plugins    `yaml:"plugins" doc:"Where plugin executables are found."`
	Connectors Connectors `yaml:"connectors" required:"true" doc:"Map of connector name ([a-zA-Z0-9_-]+) to its source and destination. The name is the connector's identity: its offsets, and the default slot and publication names, derive from it."`
	// Path is the file the config was read from.
	Path string `yaml:"-"`
	// Order lists connector names in the order they appear in the file.
	Order []string `yaml:"-"`
}

// Server is the status API and metrics listener.
type Server struct {
	Listen string `yaml:"listen" doc:"host:port of the status API and /metrics; empty turns the server off." example:"127.0.0.1:8083"`
}

// Validate refuses a listen address that is not host:port.
func (s *Server) Validate(v *Validation) {
	if v.Set("listen") {
		if msg := checkListen(s.Listen); msg != "" {
			v.Errorf("listen", "%s", msg)
		}
	}
}

// Plugins configures where external connector executables are found (plugins/README.md).
type Plugins struct {
	Dir string `yaml:"dir" doc:"Where type: plugin connectors are looked up by name."`
}

// Connectors maps connector names to connectors.
type Connectors map[string]*Connector

// ConfigType names the connectors map in the reference.
func (Connectors) ConfigType() string { return "mapping of names to connectors" }

// Connector is one source-to-destination pipeline.
type Connector struct {
	Source      Source
	Destination Destination
	// Verify is the background verification of `connectd run`.
	Verify Verify `yaml:"verify" doc:"Background verification of the lake against the source in connectd run."`
	// Line is where the connector is defined in the file, for later error messages.
	Line int
}

// Source is a connector's source section: its type and the config struct that type's
// kind registered (a pointer, such as *postgres.Config).
type Source struct {
	Type   string
	Config any
}

// Destination is a connector's destination section.
type Destination struct {
	Type   string
	Config any
	// Flush is shared by every destination type: when the runtime makes data durable.
	Flush Flush
}

// Snapshot modes of a source; sources that snapshot share them (docs/configuration.md).
const (
	SnapshotInitial     = "initial"      // snapshot once, then stream
	SnapshotInitialOnly = "initial_only" // snapshot once, then stop
	SnapshotNever       = "never"        // stream only
	SnapshotWhenNeeded  = "when_needed"  // snapshot when there is no usable position
)

// SnapshotModes is the enum tag of a source's snapshot key.
const SnapshotModes = SnapshotInitial + "," + SnapshotInitialOnly + "," + SnapshotNever + "," + SnapshotWhenNeeded

// Flush bounds how much a destination holds before making it durable. Whichever limit
// is reached first triggers the flush.
type Flush struct {
	Rows     int64         `yaml:"rows" default:"1000000" doc:"Rows buffered before a flush."`
	Bytes    Size          `yaml:"bytes" default:"128MiB" doc:"Approximate bytes buffered before a flush (at most 4GiB for an s3:// lake)."`
	Interval time.Duration `yaml:"interval" default:"60s" doc:"Time since the last flush after which buffered data is flushed."`
}

// Validate refuses limits that would never or always trigger.
func (f *Flush) Validate(v *Validation) {
	if v.Set("rows") && f.Rows <= 0 {
		v.Errorf("rows", "must be greater than 0")
	}
	if v.Set("bytes") && f.Bytes <= 0 {
		v.Errorf("bytes", "must be greater than 0")
	}
	if v.Set("interval") && f.Interval <= 0 {
		v.Errorf("interval", "must be greater than 0")
	}
}

// Size is a byte count written in human form in YAML: 128MiB, 64KB, 1048576.
type Size int64
