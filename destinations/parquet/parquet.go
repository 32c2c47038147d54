// Package parquet is the parquet destination (docs/design.md, "Lake layout"): it writes
// records as Hive-partitioned Parquet files below a file:// directory or an s3://
// prefix, one file per table, UTC date and schema version between two flushes,
// named after the position of the file's first record so that a replay after a
// crash rewrites the same names instead of adding duplicates.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Kind is the parquet destination type; it implements connector.DestinationKind.
type Kind struct{}

var _ connector.DestinationKind = Kind{}

// Row group bounds. A row group is what a reader decodes in one piece and the unit
// of its parallelism; the writer holds the current one in memory (compressed pages
// plus one uncompressed page per column), so these also bound memory per open file.
const (
	rowGroupRows  = 128 << 10
	rowGroupBytes = 32 << 20
	// memoryBudget bounds the in-memory row groups of all open files together:
	// past it, every open file writes its row group out.
	memoryBudget = 256 << 20
	// pageBytes is the uncompressed page size per column.
	pageBytes = 256 << 10
)

// Open starts a destination; p.Config.Config is a *Config.
func (Kind) Open(ctx context.Context, p connector.DestinationParams) (connector.Destination, error) {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	codec, err := codecOf(cfg.Compression)
	if err != nil {
		return nil, err
	}
	loc, err := parseLocation(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	name := p.Name
	if name == "" {
		name = "default"
	}
	var st store
	switch loc.scheme {
	case "file":
		st, err = newLocalStore(loc, name)
	case "s3":
		st, err = newS3Store(ctx, loc, cfg.S3.settings(), name, log)
	}
	if err != nil {
		return nil, err
	}
	return &Destination{
		store:   st,
		log:     log,
		codec:   codec,
		schemas: map[*record.Schema]*schemaEntry{},
		byFP:    map[string]*fileSchema{},
		files:   map[fileKey]*openFile{},
		warned:  map[string]bool{},
	}, nil
}

func codecOf(name string) (compress.Codec, error) {
	switch name {
	case "zstd":
		// The fastest level: snapshot throughput is the benchmark, and it still
		// compresses typical rows several times over.
		return &zstd.Codec{Level: zstd.SpeedFastest}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "gzip":
		return &gzip.Codec{Level: gzip.DefaultCompression}, nil
	case "none":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("parquet: compression %q: want zstd, snappy, gzip or none", name)
}

// Destination writes records as Parquet files. Write, Flush and Close are called
// from one goroutine; Buffered may be called from any.
type Destination struct {
	store store
	log   *slog.Logger
	codec compress.Codec

	schemas map[*record.Schema]*schemaEntry
	byFP    map[string]*fileSchema
	files   map[fileKey]*openFile
	order   []*openFile   // open files in the order they were opened
	pending []*closedFile // closed files not yet durable (a failed Flush)
	seq     int           // names staging files
	warned  map[string]bool
	// committed is the position the runtime resumed from (Resume); cleaned lists
	// the table folders already cleared of files beyond it in this run.
	committed record.Position
	resumed   bool
	cleaned   map[string]bool

	// last is the file of the previous record: consecutive records of one table
	// skip the map lookup.
	last       *openFile
	lastSchema *record.Schema
	lastDay    int64

	// pendingBytes is the size of the closed files not yet durable.
	pendingBytes int64

	rows  atomic.Int64
	bytes atomic.Int64
}

type schemaEntry struct {
	fs *fileSchema
	fp string
}

// fileKey identifies the one open file a record goes to.
type fileKey struct {
	namespace, table string
	day              int64
	fingerprint      string
}

type openFile struct {
	key     fileKey
	fs      *fileSchema
	rel     string // final path below the root
	staging string
	file    *os.File
	out     countingWriter
	enc     *encoder
	batch   *rowBatch // being filled; nil until the file's next record
	made    int       // batches made for this file (see encoder.batch)
	rows    int64
	closing bool // the encoder was told to write the footer
	stopped bool // the encoder's goroutine has returned
}

// submit hands the batch being filled, if any, to the file's encoder, with flush
// or close asking it to write out the row group or the whole file afterwards.
func (f *openFile) submit(flush, close bool) error {
	if f.closing {
		return fmt.Errorf("parquet: write %s: the file was already being finished by a failed Flush; close the destination", f.rel)
	}
	if f.enc.failed.Load() {
		return fmt.Errorf("parquet: write %s: %w", f.rel, f.finish())
	}
	j := encJob{flush: flush, close: close}
	if f.batch != nil && f.batch.rows > 0 {
		j.batch, f.batch = f.batch, nil
	}
	f.closing = close
	if j.batch != nil || flush || close {
		f.enc.send(j)
	}
	return nil
}

// finish waits for the encoder's goroutine to return (after its queued jobs) and
// reports its first error.
func (f *openFile) finish() error {
	if !f.stopped {
		f.stopped = true
		f.closing = true
		f.enc.stop()
	}
	return f.enc.err
}

// countingWriter counts what the parquet writer has written to the staging file.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Write appends records to the open files: rows are built here and handed, in
// batches of batchRows, to each file's encoder goroutine. After an error the
// destination must be closed: the batch may be partly written.
func (d *Destination) Write(ctx context.Context, recs []record.Record) error {
	for i := range recs {
		r := &recs[i]
		if r.Schema == nil {
			return fmt.Errorf("parquet: record at %s has no schema", r.Pos)
		}
		if len(r.Pos) == 0 {
			return fmt.Errorf("parquet: %s: record has no position", r.Schema.QualifiedName())
		}
		day := utcDay(r.CommitTS)
		f := d.last
		if f == nil || r.Schema != d.lastSchema || day != d.lastDay {
			var err error
			if f, err = d.fileFor(ctx, r, day); err != nil {
				return err
			}
			d.last, d.lastSchema, d.lastDay = f, r.Schema, day
		}
		if f.batch == nil {
			f.batch = f.enc.batch(&f.made, f.fs.leaves, d.warnDecimal)
		}
		if err := f.batch.appendRecord(f.fs, r); err != nil {
			return fmt.Errorf("parquet: %s at %s: %w", r.Schema.QualifiedName(), r.Pos, err)
		}
		f.rows++
		if f.batch.len() >= batchRows || f.batch.bytes >= batchBytes {
			if err := f.submit(false, false); err != nil {
				return err
			}
		}
		if i&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	d.rows.Add(int64(len(recs)))
	return d.boundMemory()
}

// warnDecimal logs, once per column, a DECIMAL value that had to be written as null.
func (d *Destination) warnDecimal(s *record.Schema, column, value string) {
	key := s.QualifiedName() + "." + column
	if d.warned[key] {
		return
	}
	d.warned[key] = true
	d.log.Warn("parquet: DECIMAL cannot hold this value; writing null (logged once per column)",
		"table", s.QualifiedName(), "column", column, "value", value)
}

// boundMemory refreshes the byte count Buffered reports and, when the open files
// together hold more than memoryBudget in memory, has every one write its row group
// out. The encoders publish their figures after each batch, so the count lags by
// the batches in flight (at most encQueue+1 per file).
func (d *Destination) boundMemory() error {
	mem, total := d.openBytes()
	if mem > memoryBudget {
		for _, f := range d.order {
			if err := f.submit(true, false); err != nil {
				return err
			}
		}
		for _, f := range d.order {
			if err := f.enc.sync(); err != nil {
				return fmt.Errorf("parquet: write %s: %w", f.rel, err)
			}
		}
		_, total = d.openBytes()
	}
	d.bytes.Store(total + d.pendingBytes)
	return nil
}

// openBytes sums what the open files hold in memory, and that plus what they
// wrote to their staging files and the rows not yet handed to their encoders.
func (d *Destination) openBytes() (mem, total int64) {
	for _, f := range d.order {
		m := f.enc.mem.Load()
		mem += m
		total += m + f.enc.written.Load()
		if f.batch != nil {
			total += f.batch.bytes
		}
	}
	return mem, total
}

// fileFor finds or opens the file for a record.
func (d *Destination) fileFor(ctx context.Context, r *record.Record, day int64) (*openFile, error) {
	se := d.schemas[r.Schema]
	if se == nil {
		fp := fileFingerprint(r.Schema)
		fs := d.byFP[fp]
		if fs == nil {
			var err error
			if fs, err = buildSchema(r.Schema); err != nil {
				return nil, fmt.Errorf("parquet: %s: %w", r.Schema.QualifiedName(), err)
			}
			for _, c := range fs.columns {
				if c.fallback != "" {
					d.log.Warn("parquet: "+c.fallback, "table", r.Schema.QualifiedName(), "column", c.name)
				}
			}
			d.byFP[fp] = fs
		}
		// Sources share one *Schema per table version; the bound only guards
		// against one that does not.
		if len(d.schemas) > 10000 {
			clear(d.schemas)
		}
		se = &schemaEntry{fs: fs, fp: fp}
		d.schemas[r.Schema] = se
	}
	key := fileKey{namespace: r.Schema.Namespace, table: r.Schema.Table, day: day, fingerprint: se.fp}
	if f := d.files[key]; f != nil {
		return f, nil
	}
	if key.namespace == "" || key.table == "" {
		return nil, fmt.Errorf("parquet: record at %s has an empty namespace or table name", r.Pos)
	}
	if err := d.clean(ctx, key.namespace, key.table); err != nil {
		return nil, err
	}
	f, err := d.openFile(key, se.fs, r)
	if err != nil {
		return nil, err
	}
	d.files[key] = f
	d.order = append(d.order, f)
	return f, nil
}

func (d *Destination) openFile(key fileKey, fs *fileSchema, first *record.Record) (*openFile, error) {
	d.seq++
	staging := filepath.Join(d.store.stagingDir(), strconv.Itoa(d.seq)+".parquet.tmp")
	file, err := os.OpenFile(staging, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("parquet: create staging file: %w", err)
	}
	f := &openFile{
		key:     key,
		fs:      fs,
		rel:     partitionDir(key.namespace, key.table, key.day) + "/" + fileName(first.Pos),
		staging: staging,
		file:    file,
	}
	f.out.w = file
	w := parquet.NewWriter(&f.out, fs.parquet,
		parquet.Compression(d.codec),
		parquet.PageBufferSize(pageBytes),
		parquet.WriteBufferSize(256<<10),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.CreatedBy("connectd", "", ""),
		parquet.KeyValueMetadata("connectd.table", first.Schema.QualifiedName()),
		parquet.KeyValueMetadata("connectd.schema_fingerprint", key.fingerprint),
	)
	f.enc = newEncoder(w, &f.out)
	return f, nil
}

// Buffered reports rows written since the last Flush and the approximate bytes they
// take: staged file sizes plus what the writers hold in memory, as of the end of
// the last Write.
func (d *Destination) Buffered() (rows, bytes int64) {
	return d.rows.Load(), d.bytes.Load()
}

// Flush closes every open file and makes it durable at its final name. It returns
// only once all are. When making them durable fails (an upload, a rename), the files
// not yet durable stay staged and the next Flush retries them.
func (d *Destination) Flush(ctx context.Context) error {
	// Every encoder finishes its file at once; then each is made durable in turn.
	for _, f := range d.order {
		if !f.closing {
			if err := f.submit(false, true); err != nil {
				return err
			}
		}
	}
	for len(d.order) > 0 {
		f := d.order[0]
		cf, err := d.closeFile(f)
		if err != nil {
			return err
		}
		delete(d.files, f.key)
		d.order = d.order[1:]
		d.pending = append(d.pending, cf)
		d.pendingBytes += cf.size
	}
	d.order = nil
	d.last, d.lastSchema = nil, nil
	if len(d.pending) > 0 {
		pending, err := d.store.commit(ctx, d.pending)
		d.pending = pending
		d.pendingBytes = 0
		for _, f := range pending {
			d.pendingBytes += f.size
		}
		if err != nil {
			d.bytes.Store(d.pendingBytes)
			return err
		}
	}
	d.rows.Store(0)
	d.bytes.Store(0)
	return nil
}

// closeFile waits for f's encoder to have written the footer, then syncs and
// closes the staging file.
func (d *Destination) closeFile(f *openFile) (*closedFile, error) {
	if err := f.finish(); err != nil {
		return nil, fmt.Errorf("parquet: finish %s: %w", f.rel, err)
	}
	if d.store.fsyncStaging() {
		if err := f.file.Sync(); err != nil {
			return nil, fmt.Errorf("parquet: sync %s: %w", f.staging, err)
		}
	}
	if err := f.file.Close(); err != nil {
		return nil, fmt.Errorf("parquet: close %s: %w", f.staging, err)
	}
	return &closedFile{staging: f.staging, rel: f.rel, size: f.out.n, rows: f.rows}, nil
}

// Close abandons open and not yet durable files without flushing them, and removes
// their staging files.
func (d *Destination) Close(ctx context.Context) error {
	var errs []error
	for _, f := range d.order {
		f.enc.abandon.Store(true)
		_ = f.finish() // only to stop the goroutine before its file is closed
		f.file.Close()
		if err := os.Remove(f.staging); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, f := range d.pending {
		if f.moved {
			continue
		}
		if err := os.Remove(f.staging); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.order, d.pending, d.last = nil, nil, nil
	clear(d.files)
	if err := d.store.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

var _ connector.Resumer = (*Destination)(nil)

// Resume notes the committed position the run resumes from. Files named beyond it
// were written by a flush whose commit was lost; a replay rewrites them under the same
// names when the source replays the same records, but a source whose records may
// differ on a replay (an API's data changed meanwhile) would leave them beside the new
// ones. So before the first file of a table is opened, the table's files named beyond
// the committed position are removed (docs/design.md, "Exactly once").
func (d *Destination) Resume(_ context.Context, committed record.Position) error {
	d.committed = slices.Clone(committed)
	d.resumed = true
	d.cleaned = map[string]bool{}
	return nil
}

// clean removes, once per run and table, the table's files whose first position is
// beyond the committed one. A name that is a hash of a long position cannot be told
// and is kept.
func (d *Destination) clean(ctx context.Context, namespace, table string) error {
	dir := tableDir(namespace, table)
	if !d.resumed || d.cleaned[dir] {
		return nil
	}
	rels, err := d.store.list(ctx, dir)
	if err != nil {
		return err
	}
	var stale []string
	for _, rel := range rels {
		name := strings.TrimSuffix(path.Base(rel), ".parquet")
		pos, err := record.ParsePosition(name)
		if err != nil || len(pos) == 0 {
			continue // a hashed name, or not one of ours
		}
		if pos.Compare(d.committed) > 0 {
			stale = append(stale, rel)
		}
	}
	if len(stale) > 0 {
		d.log.Info("parquet: removing files an uncommitted flush left", "table", namespace+"."+table, "files", len(stale), "committed", d.committed.String())
		if err := d.store.remove(ctx, stale); err != nil {
			return err
		}
	}
	d.cleaned[dir] = true
	return nil
}
