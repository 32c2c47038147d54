// Package jsonl is the connector of the example source plugin jsonl-source (its main
// is one line, in the folder above, so that tests and bench/plugin can also run the
// connector in process with sdk.EmbedSource): it tails a file of JSON
// lines (one object per line) and emits each complete line as an insert.
//
// The position of a record is the byte offset just past its line, as 8 big-endian
// bytes, so positions compare like the offsets and a restart seeks straight to the
// first line not yet committed. A line without its final newline is not read until
// the newline arrives.
//
// The schema is fixed, declared in the config: each column names a field of the
// line's object and its type. Without columns, every line becomes one JSON column
// named "doc". Fields not declared are ignored; a declared field that is absent is
// null.
//
// The commit time of a record is the value of the time_column (a timestamptz
// column) when one is configured, and otherwise the Unix epoch: it must be the same
// when a line is read again after a restart, because destinations partition by it.
package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/plugins/sdk"
	"github.com/connectd/connectd/record"
)

// Config is the `config:` section of the connector. Its tags declare the keys to
// connectd (which checks a connector's config against them before the plugin runs)
// and to the SDK, which decodes the section into it.
type Config struct {
	Path        string        `yaml:"path" doc:"The JSON-lines file to tail." required:"true" example:"/var/log/app/events.jsonl"`
	Namespace   string        `yaml:"namespace" doc:"The namespace of the records." default:"jsonl"`
	Table       string        `yaml:"table" doc:"The table of the records." defaultdoc:"the file's name without its extension"`
	Columns     Columns       `yaml:"columns" doc:"The fields of each line's object that become columns: name, type and key (true for a key column); fields not listed are ignored." defaultdoc:"one json column doc, the whole line"`
	TimeColumn  string        `yaml:"time_column" doc:"A timestamptz column whose value is the record's commit time (and so its date partition in a lake)." defaultdoc:"none: the Unix epoch"`
	Poll        time.Duration `yaml:"poll" doc:"How often to look for new lines once at the end of the file." default:"200ms"`
	SkipInvalid bool          `yaml:"skip_invalid" doc:"Skip (and log) lines that do not parse instead of failing." default:"false"`
}

// Columns is the list of declared columns.
type Columns []Column

// ConfigType names the type in connectd's reference tables.
func (Columns) ConfigType() string { return "list of columns" }

// JSONSchema describes the list to connectd's validation of the config.
func (*Columns) JSONSchema() map[string]any {
	return map[string]any{"type": "array", "items": map[string]any{
		"type":                 "object",
		"required":             []any{"name", "type"},
		"additionalProperties": false,
		"properties": map[string]any{
			"name": map[string]any{"type": "string", "description": "The field of the line's object."},
			"type": map[string]any{"type": "string", "description": "The column's type.",
				"pattern": `^(bool|int16|int32|int64|float64|decimal(\([0-9]+,[0-9]+\))?|string|bytes|date|time|timestamp|timestamptz|uuid|json)$`},
			"key": map[string]any{"type": "boolean", "description": "Whether the column is part of the key."},
		},
	}}
}

// Column declares one field of the lines.
type Column struct {
	Name string `json:"name"`
	// Type is bool, int16, int32, int64, float64, decimal(p,s), decimal, string,
	// bytes (base64), date (2006-01-02), time (15:04:05.999999), timestamp,
	// timestamptz (RFC 3339), uuid or json.
	Type string `json:"type"`
	Key  bool   `json:"key"`
}

// Info names the plugin.
var Info = sdk.Info{Name: "jsonl-source", Version: "0.1.0"}

const maxLinesPerRead = 4096

// Source tails one file. The zero value is ready for Open.
type Source struct {
	cfg       Config
	env       sdk.Env
	schema    *record.Schema
	timeCol   int
	poll      time.Duration
	f         *os.File
	r         *bufio.Reader
	offset    int64
	endAtOpen int64 // sync mode: stop here
}

func (s *Source) Open(ctx context.Context, cfg Config, pos record.Position, env sdk.Env) error {
	sc, timeCol, poll, err := prepare(cfg)
	if err != nil {
		return err
	}
	s.cfg, s.env, s.schema, s.timeCol, s.poll = cfg, env, sc, timeCol, poll
	if pos != nil {
		if len(pos) != 8 {
			return sdk.Permanent(fmt.Errorf("position %s is not a jsonl-source position", pos))
		}
		s.offset = int64(binary.BigEndian.Uint64(pos))
	}
	f, err := os.Open(cfg.Path)
	if err != nil {
		return err // perhaps not created yet: retried
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	if fi.Size() < s.offset {
		_ = f.Close()
		return sdk.Permanent(fmt.Errorf("%s is %d bytes, shorter than the committed offset %d: it was truncated or replaced", cfg.Path, fi.Size(), s.offset))
	}
	if _, err := f.Seek(s.offset, io.SeekStart); err != nil {
		_ = f.Close()
		return err
	}
	s.f, s.r, s.endAtOpen = f, bufio.NewReaderSize(f, 1<<20), fi.Size()
	env.Logger.Info("tailing", "path", cfg.Path, "offset", s.offset, "table", sc.QualifiedName())
	return nil
}

// prepare validates the config and builds the schema.
func prepare(cfg Config) (*record.Schema, int, time.Duration, error) {
	if cfg.Path == "" { // the SDK requires it; this guards a direct caller
		return nil, 0, 0, sdk.Permanent(errors.New("config: path is required"))
	}
	ns, table := cfg.Namespace, cfg.Table
	if table == "" {
		table = strings.TrimSuffix(filepath.Base(cfg.Path), filepath.Ext(cfg.Path))
	}
	cols := []record.Column{{Name: "doc", SourceType: "json", Type: record.Type{Kind: record.KindJSON}, Nullable: true}}
	if len(cfg.Columns) > 0 {
		cols = cols[:0]
		for _, c := range cfg.Columns {
			t, err := parseType(c.Type)
			if err != nil {
				return nil, 0, 0, sdk.Permanent(fmt.Errorf("config: column %s: %w", c.Name, err))
			}
			cols = append(cols, record.Column{Name: c.Name, SourceType: c.Type, Type: t, Nullable: !c.Key, Key: c.Key})
		}
	}
	sc := record.NewSchema(ns, table, cols)
	timeCol := -1
	if cfg.TimeColumn != "" {
		timeCol = sc.Index(cfg.TimeColumn)
		if timeCol < 0 || cols[timeCol].Type.Kind != record.KindTimestampTZ {
			return nil, 0, 0, sdk.Permanent(fmt.Errorf("config: time_column %q must name a timestamptz column", cfg.TimeColumn))
		}
	}
	if cfg.Poll <= 0 {
		return nil, 0, 0, sdk.Permanent(fmt.Errorf("config: poll %s: want a positive duration", cfg.Poll))
	}
	return sc, timeCol, cfg.Poll, nil
}

func parseType(s string) (record.Type, error) {
	simple := map[string]record.Kind{
		"bool": record.KindBool, "int16": record.KindInt16, "int32": record.KindInt32, "int64": record.KindInt64,
		"float64": record.KindFloat64, "string": record.KindString, "bytes": record.KindBytes, "date": record.KindDate,
		"time": record.KindTime, "timestamp": record.KindTimestamp, "timestamptz": record.KindTimestampTZ,
		"uuid": record.KindUUID, "json": record.KindJSON,
	}
	if k, ok := simple[s]; ok {
		return record.Type{Kind: k}, nil
	}
	if s == "decimal" {
		return record.Type{Kind: record.KindDecimalText, Scale: -1}, nil
	}
	var p, sc int
	if _, err := fmt.Sscanf(s, "decimal(%d,%d)", &p, &sc); err == nil && p >= 1 && p <= 38 && sc >= 0 && sc <= p {
		return record.Type{Kind: record.KindDecimal, Precision: p, Scale: sc}, nil
	}
	return record.Type{}, fmt.Errorf("unknown type %q", s)
}

// Read returns the complete lines available now, waiting up to a second for some.
func (s *Source) Read(ctx context.Context) ([]record.Record, error) {
	deadline := time.Now().Add(time.Second)
	for {
		recs, atEnd, err := s.readLines()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		// In sync mode, caught up means every complete line that existed at Open
		// (a partial last line waits for the next run).
		if s.env.Sync && (atEnd || s.offset >= s.endAtOpen) {
			return nil, io.EOF
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.poll):
		}
	}
}

// readLines reads up to maxLinesPerRead complete lines; atEnd says it reached the
// end of what is in the file now.
func (s *Source) readLines() (recs []record.Record, atEnd bool, err error) {
	for len(recs) < maxLinesPerRead {
		if s.env.Sync && s.offset >= s.endAtOpen {
			break
		}
		line, err := s.r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A partial line: forget what was read of it and read it again once
			// it is complete.
			if len(line) > 0 {
				if _, err := s.f.Seek(s.offset, io.SeekStart); err != nil {
					return nil, false, err
				}
				s.r.Reset(s.f)
			}
			atEnd = true
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read %s at offset %d: %w", s.cfg.Path, s.offset, err)
		}
		start := s.offset
		s.offset += int64(len(line))
		body := bytes.TrimSpace(line)
		if len(body) == 0 {
			continue
		}
		rec, err := s.parse(body)
		if err != nil {
			err = fmt.Errorf("%s: line at offset %d: %w", s.cfg.Path, start, err)
			if s.cfg.SkipInvalid {
				s.env.Logger.Warn("skipping invalid line", "err", err)
				continue
			}
			return nil, false, sdk.Permanent(err)
		}
		var pos [8]byte
		binary.BigEndian.PutUint64(pos[:], uint64(s.offset))
		rec.Pos = pos[:]
		recs = append(recs, rec)
	}
	return recs, atEnd, nil
}

func (s *Source) parse(line []byte) (record.Record, error) {
	rec := record.Record{Op: record.OpCreate, Schema: s.schema, CommitTS: time.Unix(0, 0).UTC()}
	if len(s.cfg.Columns) == 0 {
		if !json.Valid(line) {
			return rec, errors.New("invalid JSON")
		}
		rec.After = []record.Value{record.JSON(bytes.Clone(line))}
		return rec, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return rec, fmt.Errorf("not a JSON object: %w", err)
	}
	rec.After = make([]record.Value, len(s.schema.Columns))
	for i, c := range s.schema.Columns {
		raw, ok := obj[c.Name]
		if !ok || string(raw) == "null" {
			if c.Key {
				return rec, fmt.Errorf("key field %q is missing", c.Name)
			}
			continue
		}
		v, err := convert(c.Type, raw)
		if err != nil {
			return rec, fmt.Errorf("field %q: %w", c.Name, err)
		}
		rec.After[i] = v
	}
	if s.timeCol >= 0 {
		if ts, ok := rec.After[s.timeCol].(record.Timestamp); ok {
			rec.CommitTS = ts.Time()
		}
	}
	return rec, nil
}

// convert maps one JSON value to a typed value, numbers through their exact text.
func convert(t record.Type, raw json.RawMessage) (record.Value, error) {
	var str string
	isString := len(raw) > 0 && raw[0] == '"'
	if isString {
		if err := json.Unmarshal(raw, &str); err != nil {
			return nil, err
		}
	}
	num := func() (string, error) {
		if isString {
			return str, nil
		}
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			return "", fmt.Errorf("want a number: %w", err)
		}
		return n.String(), nil
	}
	switch t.Kind {
	case record.KindBool:
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	case record.KindInt16, record.KindInt32, record.KindInt64:
		n, err := num()
		if err != nil {
			return nil, err
		}
		bits := map[record.Kind]int{record.KindInt16: 16, record.KindInt32: 32, record.KindInt64: 64}[t.Kind]
		i, err := strconv.ParseInt(n, 10, bits)
		if err != nil {
			return nil, err
		}
		switch t.Kind {
		case record.KindInt16:
			return int16(i), nil
		case record.KindInt32:
			return int32(i), nil
		}
		return i, nil
	case record.KindFloat64:
		n, err := num()
		if err != nil {
			return nil, err
		}
		return strconv.ParseFloat(n, 64)
	case record.KindDecimal, record.KindDecimalText:
		n, err := num()
		if err != nil {
			return nil, err
		}
		return exactDecimal(n)
	case record.KindString:
		if !isString {
			return nil, errors.New("want a string")
		}
		return str, nil
	case record.KindBytes:
		return base64.StdEncoding.DecodeString(str)
	case record.KindDate:
		d, err := time.Parse("2006-01-02", str)
		if err != nil {
			return nil, err
		}
		return record.DateOf(d), nil
	case record.KindTime:
		d, err := time.Parse("15:04:05.999999", str)
		if err != nil {
			return nil, err
		}
		return record.Time(int64(d.Hour())*3600e6 + int64(d.Minute())*60e6 + int64(d.Second())*1e6 + int64(d.Nanosecond())/1e3), nil
	case record.KindTimestamp:
		ts, err := time.Parse("2006-01-02T15:04:05.999999", str)
		if err != nil {
			return nil, err
		}
		return record.TimestampOf(ts), nil
	case record.KindTimestampTZ:
		ts, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return nil, err
		}
		return record.TimestampOf(ts), nil
	case record.KindUUID:
		return record.ParseUUID(str)
	case record.KindJSON:
		return record.JSON(bytes.Clone(raw)), nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

// exactDecimal turns JSON number text (which may have an exponent) into the plain
// decimal text record.Decimal holds, without passing through a float.
func exactDecimal(n string) (record.Decimal, error) {
	mant, exp := n, 0
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		e, err := strconv.Atoi(n[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return "", fmt.Errorf("decimal %q: bad exponent", n)
		}
		mant, exp = n[:i], e
	}
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", fmt.Errorf("decimal %q: not a number", n)
	}
	point := len(intPart) + exp
	for point > len(digits) {
		digits += "0"
	}
	for point < 1 {
		digits = "0" + digits
		point++
	}
	out := strings.TrimLeft(digits[:point], "0")
	if out == "" {
		out = "0"
	}
	if point < len(digits) {
		out += "." + digits[point:]
	}
	if neg {
		out = "-" + out
	}
	return record.Decimal(out), nil
}

func (s *Source) Ack(ctx context.Context, pos record.Position) error {
	// A file keeps its lines: there is nothing to release at the source.
	s.env.Logger.Debug("committed", "offset", binary.BigEndian.Uint64(pos))
	return nil
}

func (s *Source) Close(context.Context) error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// Check verifies the config and that the file can be read.
func (s *Source) Check(ctx context.Context, cfg Config) []connector.CheckResult {
	if _, _, _, err := prepare(cfg); err != nil {
		return []connector.CheckResult{{Name: "jsonl-source: config", Detail: err.Error(), Fix: "correct the config section"}}
	}
	f, err := os.Open(cfg.Path)
	if err != nil {
		return []connector.CheckResult{{Name: "jsonl-source: open " + cfg.Path, Detail: err.Error(), Fix: "create the file or correct path"}}
	}
	_ = f.Close()
	return []connector.CheckResult{{Name: "jsonl-source: open " + cfg.Path, OK: true, Detail: "readable"}}
}

// Discover reports the one table this source reads.
func (s *Source) Discover(ctx context.Context, cfg Config) ([]*record.Schema, error) {
	sc, _, _, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return []*record.Schema{sc}, nil
}
