package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Source and destination types the loader knows.
const (
	TypePostgres = "postgres"
	TypeMySQL    = "mysql"
	TypePlugin   = "plugin"
	TypeParquet  = "parquet"
)

// Defaults applied to keys left out.
const (
	DefaultSnapshotChunk = 100000
	// DefaultDiscovery is how often a postgres stream looks for new matching tables.
	DefaultDiscovery     = 30 * time.Second
	DefaultCompression   = "zstd"
	DefaultFlushRows     = 1000000
	DefaultFlushBytes    = Size(128 << 20)
	DefaultFlushInterval = 60 * time.Second
)

// Load reads and parses the config file at path, taking ${VAR} values from the process
// environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the config file: " + unwrapPath(err).Error()}
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses a config file's content. path names the file in errors and anchors
// relative paths (*_file secrets, file:// offsets) to its directory. lookup supplies
// environment variables; nil means none is set. The error is a *Error, or Errors
// when there are several problems.
//
// ${VAR} substitution is textual and happens before YAML parsing (outside comments),
// so a value may carry YAML syntax (`tables: ${TABLES}` with TABLES="[a.b, c.d]"); a
// value that could be misread as YAML (a password starting with * or containing ": ")
// belongs in quotes or, better, in a *_file secret.
func Parse(path string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	d := &decoder{
		file:    path,
		dir:     filepath.Dir(path),
		aliases: map[*ast.AliasNode]ast.Node{},
		budget:  maxExpansion,
	}
	text, errs := interpolate(path, data, lookup)
	if len(errs) > 0 {
		return nil, errs.result()
	}
	f, err := parseYAML(text)
	if err != nil {
		return nil, d.syntaxError(err)
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, &Error{File: path, Msg: "the file is empty"}
	}
	if len(docs) > 1 {
		line, _ := pos(docs[1].Body)
		return nil, &Error{File: path, Line: line, Msg: "only one YAML document is allowed (remove the second ---)"}
	}
	d.collectAliases(docs[0].Body, map[string]ast.Node{})
	cfg := d.config(docs[0].Body)
	if err := d.errs.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseYAML guards against panics in the YAML parser: a malformed file must give an
// error, never a crash.
func parseYAML(text []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	return parser.ParseBytes(text, 0)
}

func (d *decoder) syntaxError(err error) error {
	e := &Error{File: d.file, Msg: "invalid YAML: " + err.Error()}
	var se *yaml.SyntaxError
	if errors.As(err, &se) {
		e.Msg = "invalid YAML: " + se.GetMessage()
		if tk := se.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

func (d *decoder) config(body ast.Node) *Config {
	cfg := &Config{Path: d.file, Connectors: map[string]*Connector{}}
	entries, ok := d.mapping(body, "", 1)
	if !ok {
		return cfg
	}
	var offsetsLine, offsetsCol int
	var sawConnectors bool
	d.fields(entries, "", []field{
		{"offsets", func(e entry, p string) {
			d.str(&cfg.Offsets)(e, p)
			offsetsLine, offsetsCol = e.line, e.col
		}},
		{"server", func(e entry, p string) {
			es, _ := d.mapping(e.value, p, e.line)
			d.fields(es, p, []field{{"listen", func(e entry, p string) {
				if d.strOK(e, p, &cfg.Server.Listen) {
					if msg := checkListen(cfg.Server.Listen); msg != "" {
						d.errorf(e.line, e.col, p, "%s", msg)
					}
				}
			}}}, nil, "server")
		}},
		{"plugins", func(e entry, p string) {
			es, _ := d.mapping(e.value, p, e.line)
			d.fields(es, p, []field{{"dir", d.str(&cfg.Plugins.Dir)}}, nil, "plugins")
		}},
		{"connectors", func(e entry, p string) {
			sawConnectors = true
			es, ok := d.mapping(e.value, p, e.line)
			if ok && len(es) == 0 {
				d.errorf(e.line, e.col, p, "at least one connector is required")
			}
			for _, ce := range es {
				cfg.Order = append(cfg.Order, ce.key)
				cfg.Connectors[ce.key] = d.connector(ce, joinPath(p, ce.key))
			}
		}},
	}, nil, "the config file")

	switch {
	case cfg.Offsets == "":
		if offsetsLine == 0 {
			offsetsLine = 1
		}
		d.errorf(offsetsLine, offsetsCol, "offsets", "required: where checkpoints live, e.g. file:///var/lib/connectd")
	default:
		if abs, msg := d.checkOffsets(cfg.Offsets); msg != "" {
			d.errorf(offsetsLine, offsetsCol, "offsets", "%s", msg)
		} else {
			cfg.Offsets = abs
		}
	}
	if !sawConnectors {
		d.errorf(1, 0, "connectors", "required: at least one connector")
	}
	d.checkShared(cfg)
	return cfg
}

func (d *decoder) connector(ce entry, path string) *Connector {
	c := &Connector{Line: ce.line}
	if !validConnectorName(ce.key) {
		d.errorf(ce.line, ce.col, path, "connector name must match [a-zA-Z0-9_-]+")
	}
	entries, ok := d.mapping(ce.value, path, ce.line)
	if !ok {
		return c
	}
	var sawSource, sawDest bool
	d.fields(entries, path, []field{
		{"source", func(e entry, p string) {
			sawSource = true
			d.source(e, p, ce.key, &c.Source)
		}},
		{"destination", func(e entry, p string) {
			sawDest = true
			d.destination(e, p, &c.Destination)
		}},
	}, nil, "a connector")
	if !sawSource {
		d.errorf(ce.line, ce.col, joinPath(path, "source"), "required")
	}
	if !sawDest {
		d.errorf(ce.line, ce.col, joinPath(path, "destination"), "required")
	}
	return c
}

// typeOf finds and removes a section's `type` key.
func (d *decoder) typeOf(entries []entry, path string, sectionLine int, known []string) (string, []entry, bool) {
	var typ string
	var rest []entry
	found := false
	var line, col int
	for _, e := range entries {
		if e.key == "type" {
			found = true
			line, col = e.line, e.col
			if s, ok := d.scalar(e, joinPath(path, "type")); ok {
				typ = s
			}
			continue
		}
		rest = append(rest, e)
	}
	p := joinPath(path, "type")
	if !found || typ == "" {
		if !found {
			line = sectionLine
			for _, e := range rest {
				if suggest(e.key, []string{"type"}) != "" {
					d.errorf(e.line, e.col, joinPath(path, e.key), "unknown key (did you mean %q?)", "type")
				}
			}
		}
		d.errorf(line, col, p, "required: one of %s", strings.Join(known, ", "))
		return "", rest, false
	}
	for _, k := range known {
		if typ == k {
			return typ, rest, true
		}
	}
	d.errorf(line, col, p, "unknown type %q: known types are %s", typ, strings.Join(known, ", "))
	return typ, rest, false
}

var sourceTypes = []string{TypePostgres, TypeMySQL, TypePlugin}
var destinationTypes = []string{TypeParquet, TypePlugin}

func (d *decoder) source(se entry, path, name string, s *Source) {
	entries, ok := d.mapping(se.value, path, se.line)
	if !ok {
		return
	}
	typ, rest, ok := d.typeOf(entries, path, se.line, sourceTypes)
	s.Type = typ
	if !ok {
		return
	}
	fieldsOf := func(t string) []field {
		switch t {
		case TypePostgres:
			return d.postgresFields(&PostgresSource{}, &postgresState{})
		case TypeMySQL:
			return d.mysqlFields(&MySQLSource{}, &mysqlState{})
		default:
			return d.pluginFields(&PluginConfig{}, &pluginState{})
		}
	}
	foreign := foreignKeys(typ, sourceTypes, fieldsOf)
	what := "type " + typ
	switch typ {
	case TypePostgres:
		ps, st := &PostgresSource{}, &postgresState{}
		d.fields(rest, path, withNoop(d.postgresFields(ps, st), "type"), foreign, what)
		d.finishPostgres(ps, st, path, name, se)
		s.Postgres = ps
	case TypeMySQL:
		ms, st := &MySQLSource{}, &mysqlState{}
		d.fields(rest, path, withNoop(d.mysqlFields(ms, st), "type"), foreign, what)
		d.finishMySQL(ms, st, path, se)
		s.MySQL = ms
	case TypePlugin:
		pc, st := &PluginConfig{}, &pluginState{}
		d.fields(rest, path, withNoop(d.pluginFields(pc, st), "type"), foreign, what)
		d.finishPlugin(pc, st, path, se)
		s.Plugin = pc
	}
}

func (d *decoder) destination(de entry, path string, dst *Destination) {
	entries, ok := d.mapping(de.value, path, de.line)
	if !ok {
		return
	}
	typ, rest, ok := d.typeOf(entries, path, de.line, destinationTypes)
	dst.Type = typ
	// flush is shared by every type, so it is decoded even when the type is wrong.
	var typed []entry
	for _, e := range rest {
		if e.key == "flush" {
			d.flush(e, joinPath(path, "flush"), &dst.Flush)
			continue
		}
		typed = append(typed, e)
	}
	dst.Flush.applyDefaults()
	if !ok {
		return
	}
	fieldsOf := func(t string) []field {
		if t == TypeParquet {
			return d.parquetFields(&ParquetDestination{}, &parquetState{})
		}
		return d.pluginFields(&PluginConfig{}, &pluginState{})
	}
	foreign := foreignKeys(typ, destinationTypes, fieldsOf)
	what := "type " + typ
	switch typ {
	case TypeParquet:
		pq, st := &ParquetDestination{}, &parquetState{}
		d.fields(typed, path, withNoop(d.parquetFields(pq, st), "type", "flush"), foreign, what)
		d.finishParquet(pq, st, path, de)
		d.checkUploadSize(pq, dst.Flush, path, de)
		dst.Parquet = pq
	case TypePlugin:
		pc, st := &PluginConfig{}, &pluginState{}
		d.fields(typed, path, withNoop(d.pluginFields(pc, st), "type", "flush"), foreign, what)
		d.finishPlugin(pc, st, path, de)
		dst.Plugin = pc
	}
}

// withNoop adds keys decoded elsewhere (type, flush) so that a misspelling of them
// still gets a suggestion.
func withNoop(fs []field, names ...string) []field {
	for _, n := range names {
		fs = append(fs, field{n, func(entry, string) {}})
	}
	return fs
}

// foreignKeys maps each key of the other types to its type name. Building the field
// lists only reads their names; nothing is decoded.
func foreignKeys(typ string, types []string, fieldsOf func(string) []field) map[string]string {
	own := map[string]bool{}
	for _, f := range fieldsOf(typ) {
		own[f.name] = true
	}
	out := map[string]string{}
	for _, t := range types {
		if t == typ {
			continue
		}
		for _, f := range fieldsOf(t) {
			if !own[f.name] {
				if _, dup := out[f.name]; !dup {
					out[f.name] = t
				}
			}
		}
	}
	return out
}

func (f *Flush) applyDefaults() {
	if f.Rows == 0 {
		f.Rows = DefaultFlushRows
	}
	if f.Bytes == 0 {
		f.Bytes = DefaultFlushBytes
	}
	if f.Interval == 0 {
		f.Interval = DefaultFlushInterval
	}
}

func (d *decoder) flush(fe entry, path string, f *Flush) {
	entries, ok := d.mapping(fe.value, path, fe.line)
	if !ok {
		return
	}
	positive := func(e entry, p string, v int64) bool {
		if v <= 0 {
			d.errorf(e.line, e.col, p, "must be greater than 0")
			return false
		}
		return true
	}
	d.fields(entries, path, []field{
		{"rows", func(e entry, p string) {
			if v, ok := d.integer(e, p); ok && positive(e, p, v) {
				f.Rows = v
			}
		}},
		{"bytes", func(e entry, p string) {
			d.markKey(e, p)
			if v, ok := d.size(e, p); ok && positive(e, p, int64(v)) {
				f.Bytes = v
			}
		}},
		{"interval", func(e entry, p string) {
			if v, ok := d.duration(e, p); ok && positive(e, p, int64(v)) {
				f.Interval = v
			}
		}},
	}, nil, "flush")
}

// secret is a key that may also be read from a file named by <key>_file.
type secret struct {
	key               string
	fileLine, fileCol int
	line, col         int // of whichever of the two keys was given, for later checks
	fileSet, valSet   bool
}

// secretFields returns the two fields of a secret: `key` and `key_file`.
func (d *decoder) secretFields(key string, dst *string, s *secret) []field {
	s.key = key
	return []field{
		{key, func(e entry, p string) {
			d.str(dst)(e, p)
			s.valSet, s.line, s.col = true, e.line, e.col
		}},
		{key + "_file", func(e entry, p string) {
			s.fileSet, s.fileLine, s.fileCol = true, e.line, e.col
			s.line, s.col = e.line, e.col
			name, ok := d.scalar(e, p)
			if !ok {
				return
			}
			if name == "" {
				d.errorf(e.line, e.col, p, "must name a file")
				return
			}
			if !filepath.IsAbs(name) {
				name = filepath.Join(d.dir, name)
			}
			data, err := readSecret(name)
			if err != nil {
				d.errorf(e.line, e.col, p, "cannot read %s: %v", name, err)
				return
			}
			*dst = strings.TrimRight(string(data), "\r\n")
		}},
	}
}

// maxSecret bounds a secret file: anything larger is a mistake (a wrong path), and
// reading a device such as /dev/zero must not hang the loader.
const maxSecret = 64 << 10

func readSecret(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(data) > maxSecret {
		return nil, fmt.Errorf("larger than %d KiB", maxSecret>>10)
	}
	return data, nil
}

// unwrapPath drops the path from an *fs.PathError, which the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (d *decoder) checkSecret(s *secret, path string) {
	if s.fileSet && s.valSet {
		d.errorf(s.fileLine, s.fileCol, joinPath(path, s.key+"_file"), "set %s or %s_file, not both", s.key, s.key)
	}
}

type postgresState struct {
	dsn, password         secret
	tablesSet, tablesOK   bool
	tablesLine, tablesCol int
	tableLines            []int
	slotSet, pubSet       bool
}

func (d *decoder) postgresFields(ps *PostgresSource, st *postgresState) []field {
	fs := []field{}
	fs = append(fs, d.secretFields("dsn", &ps.DSN, &st.dsn)...)
	fs = append(fs, d.secretFields("password", &ps.Password, &st.password)...)
	fs = append(fs,
		field{"tables", func(e entry, p string) {
			st.tablesSet, st.tablesLine, st.tablesCol = true, e.line, e.col
			ps.Tables, st.tableLines, st.tablesOK = d.stringList(e, p)
		}},
		field{"slot", func(e entry, p string) {
			st.slotSet = true
			d.markKey(e, p)
			if d.strOK(e, p, &ps.Slot) {
				if msg := checkPGIdent(ps.Slot); msg != "" {
					d.errorf(e.line, e.col, p, "%s", msg)
				}
			}
		}},
		field{"publication", func(e entry, p string) {
			st.pubSet = true
			d.markKey(e, p)
			if d.strOK(e, p, &ps.Publication) {
				if msg := checkPGIdent(ps.Publication); msg != "" {
					d.errorf(e.line, e.col, p, "%s", msg)
				}
			}
		}},
		field{"snapshot", func(e entry, p string) {
			if d.strOK(e, p, &ps.Snapshot) {
				if msg := checkSnapshot(ps.Snapshot); msg != "" {
					d.errorf(e.line, e.col, p, "%s", msg)
				}
			}
		}},
		field{"heartbeat", func(e entry, p string) {
			if v, ok := d.duration(e, p); ok {
				ps.Heartbeat = v
			}
		}},
		field{"snapshot_chunk", func(e entry, p string) {
			if v, ok := d.integer(e, p); ok {
				if v <= 0 || v > 1<<31-1 {
					d.errorf(e.line, e.col, p, "must be between 1 and %d", 1<<31-1)
					return
				}
				ps.SnapshotChunk = int(v)
			}
		}},
		field{"discovery", func(e entry, p string) {
			if v, ok := d.duration(e, p); ok {
				if v < 100*time.Millisecond {
					d.errorf(e.line, e.col, p, "must be at least 100ms (it is how often the catalog is read for new tables)")
					return
				}
				ps.Discovery = v
			}
		}},
	)
	return fs
}

func (d *decoder) finishPostgres(ps *PostgresSource, st *postgresState, path, name string, se entry) {
	d.checkSecret(&st.dsn, path)
	d.checkSecret(&st.password, path)
	switch {
	case !st.dsn.valSet && !st.dsn.fileSet:
		d.errorf(se.line, se.col, joinPath(path, "dsn"), "required: postgres://user@host:5432/db or host=... dbname=...")
	case ps.DSN == "":
		d.errorf(st.dsn.line, st.dsn.col, joinPath(path, "dsn"), "must not be empty")
	default:
		if msg := checkPostgresDSN(ps.DSN); msg != "" {
			d.errorf(st.dsn.line, st.dsn.col, joinPath(path, "dsn"), "%s", msg)
		}
	}
	d.checkTables(ps.Tables, st.tablesSet, st.tablesOK, st.tablesLine, st.tablesCol, st.tableLines, path, se)
	def := "connectd_" + sanitizeIdent(name)
	if !st.slotSet || ps.Slot == "" {
		ps.Slot = def
		if len(def) > maxPGIdent {
			d.errorf(se.line, se.col, joinPath(path, "slot"), "the default %q is longer than %d characters; set slot explicitly", def, maxPGIdent)
		}
	}
	if !st.pubSet || ps.Publication == "" {
		ps.Publication = def
		if len(def) > maxPGIdent {
			d.errorf(se.line, se.col, joinPath(path, "publication"), "the default %q is longer than %d characters; set publication explicitly", def, maxPGIdent)
		}
	}
	if ps.Snapshot == "" {
		ps.Snapshot = SnapshotInitial
	}
	if ps.SnapshotChunk == 0 {
		ps.SnapshotChunk = DefaultSnapshotChunk
	}
	if ps.Discovery == 0 {
		ps.Discovery = DefaultDiscovery
	}
}

type mysqlState struct {
	dsn, password         secret
	tablesSet, tablesOK   bool
	tablesLine, tablesCol int
	tableLines            []int
	serverIDSet           bool
}

func (d *decoder) mysqlFields(ms *MySQLSource, st *mysqlState) []field {
	fs := []field{}
	fs = append(fs, d.secretFields("dsn", &ms.DSN, &st.dsn)...)
	fs = append(fs, d.secretFields("password", &ms.Password, &st.password)...)
	fs = append(fs,
		field{"server_id", func(e entry, p string) {
			st.serverIDSet = true
			d.markKey(e, p)
			if v, ok := d.integer(e, p); ok {
				if v <= 0 || v > 1<<32-1 {
					d.errorf(e.line, e.col, p, "must be between 1 and 4294967295 and unique among the server's replicas")
					return
				}
				ms.ServerID = uint32(v)
			}
		}},
		field{"tables", func(e entry, p string) {
			st.tablesSet, st.tablesLine, st.tablesCol = true, e.line, e.col
			ms.Tables, st.tableLines, st.tablesOK = d.stringList(e, p)
		}},
		field{"snapshot", func(e entry, p string) {
			if d.strOK(e, p, &ms.Snapshot) {
				if msg := checkSnapshot(ms.Snapshot); msg != "" {
					d.errorf(e.line, e.col, p, "%s", msg)
				}
			}
		}},
		field{"tinyint1_as_boolean", d.boolean(&ms.TinyInt1AsBoolean)},
	)
	return fs
}

func (d *decoder) finishMySQL(ms *MySQLSource, st *mysqlState, path string, se entry) {
	d.checkSecret(&st.dsn, path)
	d.checkSecret(&st.password, path)
	switch {
	case !st.dsn.valSet && !st.dsn.fileSet:
		d.errorf(se.line, se.col, joinPath(path, "dsn"), "required: mysql://user:password@host:3306/")
	case ms.DSN == "":
		d.errorf(st.dsn.line, st.dsn.col, joinPath(path, "dsn"), "must not be empty")
	default:
		if msg := checkMySQLDSN(ms.DSN); msg != "" {
			d.errorf(st.dsn.line, st.dsn.col, joinPath(path, "dsn"), "%s", msg)
		}
	}
	if !st.serverIDSet {
		d.errorf(se.line, se.col, joinPath(path, "server_id"), "required: a number > 0, unique among the server's replicas")
	}
	d.checkTables(ms.Tables, st.tablesSet, st.tablesOK, st.tablesLine, st.tablesCol, st.tableLines, path, se)
	if ms.Snapshot == "" {
		ms.Snapshot = SnapshotInitial
	}
}

func (d *decoder) checkTables(tables []string, set, ok bool, line, col int, lines []int, path string, se entry) {
	p := joinPath(path, "tables")
	if !set {
		d.errorf(se.line, se.col, p, "required: the tables to capture, e.g. [public.orders, \"public.line_*\"]")
		return
	}
	if !ok {
		return // already reported
	}
	if len(tables) == 0 {
		d.errorf(line, col, p, "must list at least one table")
		return
	}
	seen := map[string]bool{}
	for i, t := range tables {
		ip := fmt.Sprintf("%s[%d]", p, i)
		l := line
		if i < len(lines) {
			l = lines[i]
		}
		if msg := checkTable(t); msg != "" {
			d.errorf(l, 0, ip, "%s", msg)
		} else if seen[t] {
			d.errorf(l, 0, ip, "%q is listed twice", t)
		}
		seen[t] = true
	}
}

type pluginState struct {
	nameLine, nameCol, pathLine, pathCol int
}

func (d *decoder) pluginFields(pc *PluginConfig, st *pluginState) []field {
	return []field{
		{"name", func(e entry, p string) {
			st.nameLine, st.nameCol = e.line, e.col
			if d.strOK(e, p, &pc.Name) && strings.ContainsAny(pc.Name, `/\`) {
				d.errorf(e.line, e.col, p, "must be a plain name found in plugins.dir; use path: for an explicit executable")
			}
		}},
		{"path", func(e entry, p string) {
			d.str(&pc.Path)(e, p)
			st.pathLine, st.pathCol = e.line, e.col
		}},
		{"sha256", func(e entry, p string) {
			if d.strOK(e, p, &pc.SHA256) && !isHex64(pc.SHA256) {
				d.errorf(e.line, e.col, p, "must be 64 hexadecimal characters (the output of sha256sum)")
			}
		}},
		{"config", func(e entry, p string) {
			r := d.resolve(e.value)
			if isNull(r) {
				return
			}
			if _, ok := r.(*ast.MappingNode); !ok {
				d.errorf(e.line, e.col, p, "must be a mapping of keys to values, got %s", kindOf(r))
				return
			}
			pc.Config, _ = d.anyValue(e.value, p).(map[string]any)
		}},
		{"env", func(e entry, p string) { pc.Env = d.pluginEnv(e, p) }},
		{"timeouts", func(e entry, p string) {
			entries, ok := d.mapping(e.value, p, e.line)
			if !ok {
				return
			}
			timeout := func(dst *time.Duration) func(entry, string) {
				return func(e entry, p string) {
					if v, ok := d.duration(e, p); ok {
						*dst = v
					}
				}
			}
			t := &pc.Timeouts
			d.fields(entries, p, []field{{"start", timeout(&t.Start)}, {"call", timeout(&t.Call)},
				{"flush", timeout(&t.Flush)}, {"idle", timeout(&t.Idle)}}, nil, "timeouts")
		}},
	}
}

// pluginEnv decodes a plugin's `env:`: a list of NAME (passed from connectd's
// environment) or NAME: value items.
func (d *decoder) pluginEnv(e entry, path string) []PluginEnv {
	r := d.resolve(e.value)
	if isNull(r) {
		return nil
	}
	seq, ok := r.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.line, e.col, path, "must be a list of names (passed from connectd's environment) or NAME: value items, e.g. [AWS_REGION, {API_TOKEN: \"${APP_TOKEN}\"}], got %s", kindOf(r))
		return nil
	}
	var out []PluginEnv
	seen := map[string]bool{}
	for i, x := range seq.Values {
		ip := fmt.Sprintf("%s[%d]", path, i)
		l, c := pos(x)
		if l == 0 {
			l, c = e.line, e.col
		}
		item := entry{key: e.key, line: l, col: c, value: x}
		var v PluginEnv
		if m, isMap := d.resolve(x).(*ast.MappingNode); isMap {
			es, _ := d.mapping(m, ip, l)
			if len(es) != 1 {
				d.errorf(l, c, ip, "must be one NAME: value pair or a NAME, got %d keys", len(es))
				continue
			}
			val, ok := d.scalar(es[0], joinPath(ip, es[0].key))
			if !ok {
				continue
			}
			v = PluginEnv{Name: es[0].key, Value: val, Set: true}
		} else {
			name, ok := d.scalar(item, ip)
			if !ok {
				continue
			}
			v = PluginEnv{Name: name}
		}
		switch {
		case !validEnvName(v.Name):
			d.errorf(l, c, ip, "%q is not an environment variable name (letters, digits and _, not starting with a digit)", v.Name)
		case seen[v.Name]:
			d.errorf(l, c, ip, "%s is listed twice", v.Name)
		default:
			seen[v.Name] = true
			out = append(out, v)
		}
	}
	return out
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

func (d *decoder) finishPlugin(pc *PluginConfig, st *pluginState, path string, se entry) {
	switch {
	case pc.Name == "" && pc.Path == "":
		d.errorf(se.line, se.col, path, "a plugin needs name (looked up in plugins.dir) or path")
	case pc.Name != "" && pc.Path != "":
		d.errorf(st.pathLine, st.pathCol, joinPath(path, "path"), "set name or path, not both")
	}
}

// MaxPutObject is the largest object one S3 PutObject may upload (5 GiB).
const MaxPutObject = Size(5 << 30)

// MaxS3FlushBytes is the largest flush.bytes of an s3:// lake: a flush happens once
// the buffered bytes reach the limit, so a file can outgrow it by the batch that
// crossed it; 1 GiB under MaxPutObject leaves room for that.
const MaxS3FlushBytes = MaxPutObject - 1<<30

// checkUploadSize refuses a flush.bytes an s3:// lake cannot upload: each flushed
// file goes up in one PutObject, which S3 refuses above 5 GiB, so such a flush would
// fail on every retry.
func (d *decoder) checkUploadSize(pq *ParquetDestination, f Flush, path string, de entry) {
	if !strings.HasPrefix(pq.URL, "s3://") || f.Bytes <= MaxS3FlushBytes {
		return
	}
	p := joinPath(path, "flush.bytes")
	line, col := de.line, de.col
	if at, ok := d.keys[p]; ok {
		line, col = at[0], at[1]
	}
	d.errorf(line, col, p, "%s is too much for an s3:// lake: each file is uploaded with one PutObject, which S3 refuses above %s, and a file can outgrow the limit by one batch; set bytes to %s or less (files of 128MiB-1GiB read best)",
		f.Bytes, MaxPutObject, MaxS3FlushBytes)
}

type parquetState struct {
	urlSet               bool
	urlLine, urlCol      int
	accessKey, secretKey secret
}

func (d *decoder) parquetFields(pq *ParquetDestination, st *parquetState) []field {
	return []field{
		{"url", func(e entry, p string) {
			d.str(&pq.URL)(e, p)
			d.markKey(e, p)
			st.urlSet, st.urlLine, st.urlCol = true, e.line, e.col
		}},
		{"s3", func(e entry, p string) {
			es, _ := d.mapping(e.value, p, e.line)
			fs := []field{
				{"endpoint", func(e entry, p string) {
					if d.strOK(e, p, &pq.S3.Endpoint) {
						if msg := checkEndpoint(pq.S3.Endpoint); msg != "" {
							d.errorf(e.line, e.col, p, "%s", msg)
						}
					}
				}},
				{"region", d.str(&pq.S3.Region)},
				{"path_style", d.boolean(&pq.S3.PathStyle)},
			}
			fs = append(fs, d.secretFields("access_key_id", &pq.S3.AccessKeyID, &st.accessKey)...)
			fs = append(fs, d.secretFields("secret_access_key", &pq.S3.SecretAccessKey, &st.secretKey)...)
			d.fields(es, p, fs, nil, "s3")
			d.checkSecret(&st.accessKey, p)
			d.checkSecret(&st.secretKey, p)
			if (pq.S3.AccessKeyID == "") != (pq.S3.SecretAccessKey == "") {
				d.errorf(e.line, e.col, p, "set both access_key_id and secret_access_key, or neither (to use the AWS credential chain)")
			}
		}},
		{"compression", func(e entry, p string) {
			if !d.strOK(e, p, &pq.Compression) {
				return
			}
			switch pq.Compression {
			case "zstd", "snappy", "gzip", "none", "":
			default:
				d.errorf(e.line, e.col, p, "must be one of zstd, snappy, gzip, none; got %q", pq.Compression)
			}
		}},
	}
}

func (d *decoder) finishParquet(pq *ParquetDestination, st *parquetState, path string, de entry) {
	p := joinPath(path, "url")
	switch {
	case pq.URL == "" && !st.urlSet:
		d.errorf(de.line, de.col, p, "required: file:///path/to/lake or s3://bucket/prefix")
	default:
		if msg := checkLakeURL(pq.URL); msg != "" {
			d.errorf(st.urlLine, st.urlCol, p, "%s", msg)
		}
	}
	if pq.Compression == "" {
		pq.Compression = DefaultCompression
	}
}
