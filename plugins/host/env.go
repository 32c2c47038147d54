package host

import (
	"log/slog"
)

// processEnv is the whole environment of a plugin process, besides what go-plugin
// adds for its handshake: the variables its config's `env:` names, and TMPDIR, so
// that the plugin makes its socket and temporary files where connectd does. A
// plugin is someone else's code: connectd's own secrets (database passwords, cloud
// credentials) reach it only when the config passes them (docs/configuration.md).
func processEnv(vars Env, lookup func(string) (string, bool), log *slog.Logger) []string {
	env := make([]string, 0, len(vars)+1)
	named := map[string]bool{}
	for _, v := range vars {
		named[v.Name] = true
		if v.Set {
			env = append(env, v.Name+"="+v.Value)
			continue
		}
		val, ok := lookup(v.Name)
		if !ok {
			log.Warn("the plugin's env names a variable connectd's environment does not have; the plugin runs without it", "variable", v.Name)
			continue
		}
		env = append(env, v.Name+"="+val)
	}
	if tmp, ok := lookup("TMPDIR"); ok && !named["TMPDIR"] {
		env = append(env, "TMPDIR="+tmp)
	}
	return env
}
