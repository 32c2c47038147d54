package config

import (
	"fmt"
	"strings"
)

// Two connectors that share a server-side identity (a PostgreSQL slot or
// publication, a MySQL server_id) or a lake prefix lose changes without an error:
// one slot's changes go to whichever connector reads first, two replicas with one
// server_id keep disconnecting each other, and two writers in one lake tree read as
// one table. So they are refused when the file is loaded (docs/configuration.md,
// "One slot, one server_id, one lake prefix per connector"). The loader knows no
// slots or lakes: each kind's config lists what it claims.

// Claimer is implemented by a config struct that uses something only one connector
// may use. Claims is called after Validate and the defaults, also when the section
// had errors: it leaves out what it cannot name (a lake URL that is not one, say).
type Claimer interface {
	Claims(connector string) []Claim
}

// Claim is one thing a connector uses alone.
type Claim struct {
	// Key is the key path in the section that sets it, blamed in the error (on the
	// connector's line when the file leaves the key out).
	Key string
	// What names the thing: "replication slot", "server_id", "lake".
	What string
	// Value is how the error shows it: "connectd_orders".
	Value string
	// Identity is what two claims of one What must not share: the server and the
	// name, say. With Tree set it is a path ("s3:|bucket/raw"), and a claim inside
	// another's path conflicts too.
	Identity string
	Tree     bool
	// Advice ends the error: why sharing is refused and what to do.
	Advice string
	// DefaultNote is added to the error when either claim's key was left out (its
	// value is a default), to explain where the value came from.
	DefaultNote string
}

// claim is a Claim located in the file.
type claim struct {
	Claim
	connector string
	path      string // the full key path
	line, col int
	defaulted bool
}

// claimOf locates a claim on its key when the file sets it, else on the connector.
func (d *decoder) claimOf(c Claim, connector, section string, conn *Connector) *claim {
	cl := &claim{Claim: c, connector: connector, path: joinPath(section, c.Key)}
	if at, ok := d.keys[cl.path]; ok {
		cl.line, cl.col = at[0], at[1]
	} else {
		cl.line, cl.defaulted = conn.Line, true
	}
	return cl
}

// checkShared refuses two connectors claiming one thing.
func (d *decoder) checkShared(cfg *Config) {
	exact := map[string]*claim{}
	var trees []*claim
	for _, name := range cfg.Order {
		conn := cfg.Connectors[name]
		if conn == nil {
			continue
		}
		var all []*claim
		if c, ok := conn.Source.Config.(Claimer); ok {
			for _, x := range c.Claims(name) {
				all = append(all, d.claimOf(x, name, "connectors."+name+".source", conn))
			}
		}
		if c, ok := conn.Destination.Config.(Claimer); ok {
			for _, x := range c.Claims(name) {
				all = append(all, d.claimOf(x, name, "connectors."+name+".destination", conn))
			}
		}
		for _, c := range all {
			if !c.Tree {
				key := c.What + "\x00" + c.Identity
				if first, ok := exact[key]; ok {
					d.conflict(first, c)
				} else {
					exact[key] = c
				}
				continue
			}
			for _, first := range trees {
				if first.What != c.What {
					continue
				}
				switch a, b := first.Identity, c.Identity; {
				case a == b:
					d.treeConflict(first, c, fmt.Sprintf("connector %q writes there too", first.connector))
				case strings.HasPrefix(b, a+"/"):
					d.treeConflict(first, c, fmt.Sprintf("it lies inside the %s of connector %q", c.What, first.connector))
				case strings.HasPrefix(a, b+"/"):
					d.treeConflict(first, c, fmt.Sprintf("the %s of connector %q lies inside it", c.What, first.connector))
				}
			}
			trees = append(trees, c)
		}
	}
}

// conflict reports c, which claims what first already holds.
func (d *decoder) conflict(first, c *claim) {
	msg := fmt.Sprintf("%s %q is also used by connector %q (line %d) on the same server", c.What, c.Value, first.connector, first.line)
	if (c.defaulted || first.defaulted) && c.DefaultNote != "" {
		msg += "; " + c.DefaultNote
	}
	d.errorf(c.line, c.col, c.path, "%s; %s", msg, c.Advice)
}

// treeConflict reports c, whose tree overlaps first's.
func (d *decoder) treeConflict(first, c *claim, how string) {
	d.errorf(c.line, c.col, c.path, "%s: %s (line %d); %s", c.Value, how, first.line, c.Advice)
}
