package host

import (
	"fmt"
	"strings"

	"github.com/connectd/connectd/config/jsonschema"
	"github.com/connectd/connectd/connector"
)

// configAt is the key path of a connector's plugin `config:` in the config file, which
// a problem of the plugin's config is reported under.
func configAt(connectorName, side string) string {
	return "connectors." + connectorName + "." + side + ".config"
}

// configProblems checks the connector's `config:` against the JSON Schema the plugin
// declares in its spec (the SDK derives it from the plugin's config type), before any
// of the plugin's own code sees the config. Each problem names the key in the file.
// A plugin that declares no schema gets its config as it is.
func (c *conn) configProblems(pc *Config, at string) ([]string, error) {
	raw := c.spec.GetConfigSchema()
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	v, err := jsonschema.Compile([]byte(raw))
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("plugin %s declares a config schema that is not valid: %w", c.name, err))
	}
	var doc any = map[string]any{}
	if pc.Config != nil {
		doc = pc.Config
	}
	ps, err := v.Validate(doc)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("plugin %s: config: %w", c.name, err))
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = at
		if p.Path != "" {
			out[i] += "." + p.Path
		}
		out[i] += ": " + p.Msg
	}
	return out, nil
}

// checkConfig is configProblems as one permanent error: no restart fixes a config.
func (c *conn) checkConfig(pc *Config, at string) error {
	ps, err := c.configProblems(pc, at)
	if err != nil {
		return err
	}
	if len(ps) > 0 {
		return connector.Permanent(fmt.Errorf("plugin %s: %s", c.name, strings.Join(ps, "; ")))
	}
	return nil
}

// configResult reports the schema check as a line of `connectd check`; ok is false
// when the plugin's own checks should not run on this config.
func (c *conn) configResult(pc *Config, at string) (connector.CheckResult, bool) {
	name := "plugin " + c.name + ": config"
	ps, err := c.configProblems(pc, at)
	if err != nil {
		return connector.CheckResult{Name: name, Detail: err.Error(), Fix: "report it to the plugin's author"}, false
	}
	if len(ps) > 0 {
		return connector.CheckResult{Name: name, Detail: strings.Join(ps, "; "),
			Fix: "correct those keys of the config file (the plugin's documentation lists its keys)"}, false
	}
	detail := "the plugin declares no config schema; the plugin checks its config itself"
	if c.spec.GetConfigSchema() != "" {
		detail = "matches the plugin's config schema"
	}
	return connector.CheckResult{Name: name, OK: true, Detail: detail}, true
}

// envName is what an environment variable's name may be (validEnvName).
const envName = `^[A-Za-z_][A-Za-z0-9_]*$`

// JSONSchema describes the `env:` list to editors: NAME items, or one NAME: value each.
func (*Env) JSONSchema() map[string]any {
	return map[string]any{
		"type": []any{"array", "null"},
		"items": map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": envName},
			map[string]any{"type": "object", "minProperties": 1, "maxProperties": 1,
				"propertyNames":        map[string]any{"pattern": envName},
				"additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}}},
		}},
	}
}
