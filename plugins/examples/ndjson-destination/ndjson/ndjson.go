// Package ndjson is the connector of the example destination plugin
// ndjson-destination (its main is one line, in the folder above, so that tests and
// bench/plugin can also run it in process with sdk.EmbedDestination): it writes
// records as newline-delimited JSON, one file per table and flush:
//
//	<dir>/<namespace>/<table>/<first position>.ndjson
//
// Each line is an object with the metadata fields _op, _pos (hex), _commit_ts
// (RFC 3339, microseconds, UTC) and _txid, then the row's columns (the after image;
// the before image for deletes). Decimals are JSON numbers with their exact digits
// ("NaN" and the infinities as strings), timestamps RFC 3339 strings ("infinity" and
// "-infinity" for the extremes), bytes base64, uuids in their canonical form, json
// columns embedded as JSON.
//
// Files are written under a temporary name and renamed into place by Flush, after
// an fsync of the file, then of its directory: a reader never sees a partial file,
// and Flush returns only once the data survives a power loss. A file is named after
// the position of its first record, so when connectd replays records after a crash
// the same records land in a file of the same name and replace it: no duplicates.
package ndjson

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/plugins/sdk"
	"github.com/connectd/connectd/record"
)

// Info names the plugin.
var Info = sdk.Info{Name: "ndjson-destination", Version: "0.1.0"}

// Config is the `config:` section of the connector.
type Config struct {
	Dir string `yaml:"dir" doc:"The directory the files go below, created if missing." required:"true" example:"/var/lib/lake"`
}

// Destination writes the files. The zero value is ready for Open.
type Destination struct {
	dir   string
	env   sdk.Env
	files map[string]*file // by namespace/table
	order []string
	buf   []byte
}

// file is one table's output of the current flush.
type file struct {
	dir, tmp, final string
	f               *os.File
	w               *bufio.Writer
}

func (d *Destination) Open(ctx context.Context, cfg Config, env sdk.Env) error {
	if cfg.Dir == "" {
		return sdk.Permanent(errors.New("config: dir is required"))
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	d.dir, d.env, d.files = cfg.Dir, env, map[string]*file{}
	return nil
}

func (d *Destination) Write(ctx context.Context, recs []record.Record) error {
	for i := range recs {
		r := &recs[i]
		key := r.Namespace() + "/" + r.Table()
		f, ok := d.files[key]
		if !ok {
			var err error
			if f, err = d.create(r); err != nil {
				return err
			}
			d.files[key] = f
			d.order = append(d.order, key)
		}
		d.buf = appendLine(d.buf[:0], r)
		if _, err := f.w.Write(d.buf); err != nil {
			return fmt.Errorf("write %s: %w", f.tmp, err)
		}
	}
	return nil
}

func (d *Destination) create(r *record.Record) (*file, error) {
	dir := filepath.Join(d.dir, r.Namespace(), r.Table())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := r.Pos.String() + ".ndjson"
	f := &file{dir: dir, tmp: filepath.Join(dir, "."+name+".tmp"), final: filepath.Join(dir, name)}
	var err error
	// O_TRUNC: a temporary file left by a crashed attempt is started afresh.
	if f.f, err = os.OpenFile(f.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644); err != nil {
		return nil, err
	}
	f.w = bufio.NewWriterSize(f.f, 1<<20)
	return f, nil
}

// Flush makes every file durable: data, then the rename, then the directory entry.
func (d *Destination) Flush(ctx context.Context) error {
	dirs := map[string]bool{}
	for _, key := range d.order {
		f := d.files[key]
		if err := f.w.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", f.tmp, err)
		}
		if err := f.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", f.tmp, err)
		}
		if err := f.f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.tmp, err)
		}
		if err := os.Rename(f.tmp, f.final); err != nil {
			return err
		}
		dirs[f.dir] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	d.env.Logger.Debug("flushed", "files", len(d.order))
	d.files, d.order = map[string]*file{}, nil
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Close drops what was not flushed: connectd will send it again.
func (d *Destination) Close(context.Context) error {
	for _, f := range d.files {
		_ = f.f.Close()
		_ = os.Remove(f.tmp)
	}
	d.files, d.order = nil, nil
	return nil
}

// Check verifies that the directory can be written.
func (d *Destination) Check(ctx context.Context, cfg Config) []connector.CheckResult {
	name := "ndjson-destination: write " + cfg.Dir
	if cfg.Dir == "" {
		return []connector.CheckResult{{Name: "ndjson-destination: config", Detail: "dir is empty", Fix: "set config.dir"}}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return []connector.CheckResult{{Name: name, Detail: err.Error(), Fix: "create the directory or give connectd write access"}}
	}
	f, err := os.CreateTemp(cfg.Dir, ".check-*")
	if err != nil {
		return []connector.CheckResult{{Name: name, Detail: err.Error(), Fix: "give connectd write access to the directory"}}
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return []connector.CheckResult{{Name: name, OK: true, Detail: "writable"}}
}

func appendLine(b []byte, r *record.Record) []byte {
	b = append(b, `{"_op":"`...)
	b = append(b, byte(r.Op))
	b = append(b, `","_pos":"`...)
	b = hex.AppendEncode(b, r.Pos)
	b = append(b, `","_commit_ts":"`...)
	b = r.CommitTS.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","_txid":`...)
	if r.TxID == "" {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendQuote(b, r.TxID)
	}
	row := r.Row()
	for i, c := range r.Schema.Columns {
		b = append(b, ',')
		b = appendString(b, c.Name)
		b = append(b, ':')
		var v record.Value
		if i < len(row) {
			v = row[i]
		}
		b = appendValue(b, c.Type, v)
	}
	return append(b, "}\n"...)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func appendValue(b []byte, t record.Type, v record.Value) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(b, x)
	case int16:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float32:
		return appendFloat(b, float64(x), 32)
	case float64:
		return appendFloat(b, x, 64)
	case record.Decimal:
		if x == "NaN" || x == "Infinity" || x == "-Infinity" {
			return strconv.AppendQuote(b, string(x))
		}
		return append(b, x...)
	case string:
		return appendString(b, x)
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"')
	case record.Date:
		return strconv.AppendQuote(b, x.Time().Format("2006-01-02"))
	case record.Time:
		us := int64(x)
		return fmt.Appendf(b, `"%02d:%02d:%02d.%06d"`, us/3600e6, us/60e6%60, us/1e6%60, us%1e6)
	case record.Timestamp:
		switch x {
		case record.TimestampInfinity:
			return append(b, `"infinity"`...)
		case record.TimestampNegInfinity:
			return append(b, `"-infinity"`...)
		}
		layout := "2006-01-02T15:04:05.000000"
		if t.Kind == record.KindTimestampTZ {
			layout += "Z"
		}
		return strconv.AppendQuote(b, x.Time().Format(layout))
	case record.UUID:
		return strconv.AppendQuote(b, x.String())
	case record.JSON:
		return append(b, x...)
	case []record.Value:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var et record.Type
			if t.Elem != nil {
				et = *t.Elem
			}
			b = appendValue(b, et, e)
		}
		return append(b, ']')
	}
	return appendString(b, fmt.Sprint(v))
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}
