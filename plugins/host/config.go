package host

import (
	"fmt"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
)

// Config is the section of `type: plugin`, for a source or a destination
// (docs/configuration.md).
type Config struct {
	Name   string         `yaml:"name" doc:"The executable's name under plugins.dir." example:"http"`
	Path   string         `yaml:"path" doc:"Or an explicit path to the executable."`
	SHA256 string         `yaml:"sha256" doc:"The executable's SHA-256 (the output of sha256sum); a different file is refused."`
	Config map[string]any `yaml:"config" defaultdoc:"{}" doc:"Passed to the plugin as JSON."`
	// Timeouts bound how long connectd waits for the plugin before it kills it and
	// restarts the connector; zero fields take the kind's Timeouts.
	Timeouts ConfigTimeouts `yaml:"timeouts" doc:"Deadlines after which a silent plugin is killed and restarted."`
	// Env lists the only environment variables the plugin process gets (besides
	// go-plugin's own and TMPDIR): connectd's secrets stay out of it.
	Env Env `yaml:"env" doc:"The only environment variables the plugin process gets: a NAME passes connectd's value, NAME: value sets one (${VAR} works in it)." example:"[AWS_REGION, {API_TOKEN: \"${APP_TOKEN}\"}]"`
}

// ConfigTimeouts is the optional `timeouts:` of a plugin.
type ConfigTimeouts struct {
	Start time.Duration `yaml:"start" defaultdoc:"30s" doc:"Starting the process and the handshake."`
	Call  time.Duration `yaml:"call" defaultdoc:"30s" doc:"One call, or sending one batch."`
	Flush time.Duration `yaml:"flush" defaultdoc:"5m" doc:"A destination's flush."`
	Idle  time.Duration `yaml:"idle" defaultdoc:"30s" doc:"A source's stream carrying nothing, not even a heartbeat."`
}

// Env is a plugin's `env:` list.
type Env []EnvVar

// EnvVar is one item of a plugin's `env:`: a NAME taken from connectd's
// environment, or NAME: value set as written (after ${VAR} interpolation).
type EnvVar struct {
	Name  string
	Value string
	Set   bool // Value was written in the config; else connectd's own value is passed
}

// ConfigType names the env list in the reference.
func (Env) ConfigType() string { return "list of NAME or NAME: value" }

// DecodeConfig reads a list of NAME (passed from connectd's environment) or
// NAME: value items.
func (e *Env) DecodeConfig(v *config.Value) {
	if v.IsNull() {
		return
	}
	items, ok := v.Items()
	if !ok {
		v.Errorf("must be a list of names (passed from connectd's environment) or NAME: value items, e.g. [AWS_REGION, {API_TOKEN: \"${APP_TOKEN}\"}], got %s", v.Kind())
		return
	}
	var out Env
	seen := map[string]bool{}
	for _, item := range items {
		var ev EnvVar
		if keys, vals, isMap := item.Entries(); isMap {
			if len(keys) != 1 {
				item.Errorf("must be one NAME: value pair or a NAME, got %d keys", len(keys))
				continue
			}
			val, ok := vals[0].Scalar()
			if !ok {
				continue
			}
			ev = EnvVar{Name: keys[0], Value: val, Set: true}
		} else {
			name, ok := item.Scalar()
			if !ok {
				continue
			}
			ev = EnvVar{Name: name}
		}
		switch {
		case !validEnvName(ev.Name):
			item.Errorf("%q is not an environment variable name (letters, digits and _, not starting with a digit)", ev.Name)
		case seen[ev.Name]:
			item.Errorf("%s is listed twice", ev.Name)
		default:
			seen[ev.Name] = true
			out = append(out, ev)
		}
	}
	*e = out
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks that the plugin is named one way, and the form of name and sha256.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("name") && strings.ContainsAny(c.Name, `/\`) {
		v.Errorf("name", "must be a plain name found in plugins.dir; use path: for an explicit executable")
	}
	if v.Set("sha256") && !isHex64(c.SHA256) {
		v.Errorf("sha256", "must be 64 hexadecimal characters (the output of sha256sum)")
	}
	switch {
	case c.Name == "" && c.Path == "":
		v.Errorf("", "a plugin needs name (looked up in plugins.dir) or path")
	case c.Name != "" && c.Path != "":
		v.Errorf("path", "set name or path, not both")
	}
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// spec is the config spec of both plugin kinds: one section serves either role.
func spec(role string) config.Spec {
	return config.Spec{Type: "plugin", Summary: fmt.Sprintf("An external %s executable run over gRPC (plugins/sdk).", role),
		New: func() any { return &Config{} }}
}

// ConfigSpec describes the `type: plugin` source section.
func (SourceKind) ConfigSpec() config.Spec { return spec("source") }

// ConfigSpec describes the `type: plugin` destination section.
func (DestinationKind) ConfigSpec() config.Spec { return spec("destination") }
