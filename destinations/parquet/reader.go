package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Reader reads a lake back for verify (README.md, "Reading the lake back"). It only
// reads: it creates no staging directory, bucket or object.
type Reader struct {
	loc    location
	client *s3.Client // nil for file://
	// tempDir holds an object while it is read; "" is the system's.
	tempDir string
	// onRowGroup, when set, is called before each row group of a file is read; the
	// tests use it to see that files are streamed row group by row group.
	onRowGroup func(file string, group int)
}

var _ connector.ReaderOpener = Kind{}

// readBatch is how many rows are decoded at a time: the reader holds at most these
// rows and the pages of the row group being read, never a whole file.
const readBatch = 128

// OpenReader opens the lake of a parquet destination config for reading. A lake
// root that does not exist (a missing directory or bucket) is an error.
func (Kind) OpenReader(ctx context.Context, p connector.DestinationParams) (connector.Reader, error) {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	loc, err := parseLocation(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	r := &Reader{loc: loc}
	switch loc.scheme {
	case "file":
		st, err := os.Stat(loc.root)
		if err != nil {
			return nil, fmt.Errorf("parquet: lake %s: %w", loc, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("parquet: lake %s is not a directory", loc)
		}
	case "s3":
		r.client, err = newS3Client(ctx, cfg.S3.settings())
		if err != nil {
			return nil, err
		}
		if _, err := r.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(loc.bucket)}); err != nil {
			var nf *types.NotFound
			if errors.As(err, &nf) {
				return nil, fmt.Errorf("parquet: lake %s: bucket %q does not exist: %w", loc, loc.bucket, err)
			}
			return nil, fmt.Errorf("parquet: lake %s: bucket %q: %w", loc, loc.bucket, err)
		}
	}
	return r, nil
}

// Describe is the URL prefix of the table's files.
func (r *Reader) Describe(s *record.Schema) string {
	return r.loc.String() + "/" + tableDir(s.Namespace, s.Table) + "/"
}

// Close releases nothing: every file is closed (and its download removed) once read.
func (r *Reader) Close(context.Context) error { return nil }

// lakeFile skips the staging area and unfinished files; only committed .parquet
// files count.
func lakeFile(name string) bool {
	return strings.HasSuffix(name, ".parquet") && !strings.HasSuffix(name, ".tmp")
}

// Changes calls fn with every record of the table's files, file by file in name order.
func (r *Reader) Changes(ctx context.Context, schema *record.Schema, fn func(c *connector.StoredChange) error) error {
	files, err := r.list(ctx, schema)
	if err != nil {
		return err
	}
	c := &connector.StoredChange{Row: make([]record.Value, len(schema.Columns))}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.readOne(ctx, f, schema, c, fn); err != nil {
			return err
		}
	}
	return nil
}

// list returns the file paths (file://) or object keys (s3://) of a table.
func (r *Reader) list(ctx context.Context, schema *record.Schema) ([]string, error) {
	var files []string
	if r.client == nil {
		dir := filepath.Join(r.loc.root, filepath.FromSlash(tableDir(schema.Namespace, schema.Table)))
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if p == dir && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll // never written
				}
				return err
			}
			if e.IsDir() {
				if e.Name() == stagingDirName {
					return fs.SkipDir
				}
				return nil
			}
			if e.Type().IsRegular() && lakeFile(e.Name()) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("parquet: listing %s: %w", dir, err)
		}
		slices.Sort(files)
		return files, nil
	}
	prefix := r.loc.objectKey(tableDir(schema.Namespace, schema.Table)) + "/"
	pages := s3.NewListObjectsV2Paginator(r.client, &s3.ListObjectsV2Input{Bucket: aws.String(r.loc.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("parquet: listing s3://%s/%s: %w", r.loc.bucket, prefix, err)
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if lakeFile(k) && !strings.Contains(k, "/"+stagingDirName+"/") {
				files = append(files, k)
			}
		}
	}
	slices.Sort(files)
	return files, nil
}

// readOne opens one file (downloading an object to a temp file first) and reads it.
func (r *Reader) readOne(ctx context.Context, name string, schema *record.Schema, c *connector.StoredChange, fn func(*connector.StoredChange) error) error {
	where := name
	var f *os.File
	if r.client == nil {
		var err error
		if f, err = os.Open(name); err != nil {
			return fmt.Errorf("parquet: reading %s: %w", where, err)
		}
		defer f.Close()
	} else {
		where = "s3://" + r.loc.bucket + "/" + name
		var err error
		if f, err = r.download(ctx, name); err != nil {
			return fmt.Errorf("parquet: downloading %s: %w", where, err)
		}
		defer func() {
			f.Close()
			os.Remove(f.Name())
		}()
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("parquet: reading %s: %w", where, err)
	}
	if err := r.readFile(ctx, f, st.Size(), where, schema, c, fn); err != nil {
		return fmt.Errorf("parquet: reading %s: %w", where, err)
	}
	return nil
}

// download copies an object to a temp file, which the caller removes: S3 objects are
// read from disk so that memory stays bounded by a row group, not the file.
func (r *Reader) download(ctx context.Context, key string) (*os.File, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.loc.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	f, err := os.CreateTemp(r.tempDir, "connectd-verify-*.parquet")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// fileColumn is how one schema column is found and decoded in one file.
type fileColumn struct {
	leaf  int // -1: the file lacks the column
	depth int
	conv  func(parquet.Value) (record.Value, error)
}

// readFile streams the rows of one file through fn.
func (r *Reader) readFile(ctx context.Context, ra io.ReaderAt, size int64, where string, schema *record.Schema, c *connector.StoredChange, fn func(*connector.StoredChange) error) error {
	pf, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return err
	}
	fsch := pf.Schema()
	meta := func(name string) (int, error) {
		l, ok := fsch.Lookup(name)
		if !ok || l.Node == nil {
			return 0, fmt.Errorf("no %s column: not a file of this lake", name)
		}
		return l.ColumnIndex, nil
	}
	opLeaf, err := meta(colOp)
	if err != nil {
		return err
	}
	posLeaf, err := meta(colPos)
	if err != nil {
		return err
	}
	unchLeaf := -1
	if l, ok := fsch.Lookup(colUnchanged, "list", "element"); ok && l.Node != nil {
		unchLeaf = l.ColumnIndex
	}
	cols := make([]fileColumn, len(schema.Columns))
	c.Missing = c.Missing[:0]
	byName := make(map[string]parquet.Field, len(fsch.Fields()))
	for _, f := range fsch.Fields() {
		byName[f.Name()] = f
	}
	for i, col := range schema.Columns {
		f, ok := byName[col.Name]
		if !ok {
			cols[i].leaf = -1
			c.Missing = append(c.Missing, i)
			continue
		}
		fc, err := columnOf(fsch, f, col.Type)
		if err != nil {
			return fmt.Errorf("column %q: %w", col.Name, err)
		}
		cols[i] = fc
	}
	nameIdx := make(map[string]int, len(schema.Columns))
	for i, col := range schema.Columns {
		nameIdx[col.Name] = i
	}
	c.Where = where
	leaves := len(fsch.Columns())
	spans := make([][2]int, leaves)
	buf := make([]parquet.Row, readBatch)
	for g, rg := range pf.RowGroups() {
		if r.onRowGroup != nil {
			r.onRowGroup(where, g)
		}
		rows := rg.Rows()
		for {
			if err := ctx.Err(); err != nil {
				rows.Close()
				return err
			}
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				if err := r.decodeRow(row, spans, cols, opLeaf, posLeaf, unchLeaf, nameIdx, schema, c); err != nil {
					rows.Close()
					return fmt.Errorf("row group %d: %w", g, err)
				}
				if err := fn(c); err != nil {
					rows.Close()
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return fmt.Errorf("row group %d: %w", g, err)
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("row group %d: %w", g, err)
		}
	}
	return nil
}

func (r *Reader) decodeRow(row parquet.Row, spans [][2]int, cols []fileColumn, opLeaf, posLeaf, unchLeaf int, nameIdx map[string]int, schema *record.Schema, c *connector.StoredChange) error {
	clear(spans)
	for i := 0; i < len(row); {
		leaf := row[i].Column()
		j := i + 1
		for j < len(row) && row[j].Column() == leaf {
			j++
		}
		if leaf >= 0 && leaf < len(spans) {
			spans[leaf] = [2]int{i, j}
		}
		i = j
	}
	vals := func(leaf int) []parquet.Value { s := spans[leaf]; return row[s[0]:s[1]] }
	op := vals(opLeaf)
	if len(op) != 1 || op[0].IsNull() || len(op[0].ByteArray()) != 1 || !record.Op(op[0].ByteArray()[0]).Valid() {
		return fmt.Errorf("invalid _op")
	}
	c.Op = record.Op(op[0].ByteArray()[0])
	pos := vals(posLeaf)
	if len(pos) != 1 || pos[0].IsNull() {
		return fmt.Errorf("no _pos")
	}
	p, err := record.ParsePosition(string(pos[0].ByteArray()))
	if err != nil {
		return fmt.Errorf("_pos %q: %w", pos[0].ByteArray(), err)
	}
	c.Pos = append(c.Pos[:0], p...)
	c.Unchanged = c.Unchanged[:0]
	if unchLeaf >= 0 {
		for _, v := range vals(unchLeaf) {
			if v.IsNull() {
				continue
			}
			if i, ok := nameIdx[string(v.ByteArray())]; ok {
				c.Unchanged = append(c.Unchanged, i)
			}
		}
	}
	for i := range cols {
		fc := &cols[i]
		if fc.leaf < 0 {
			c.Row[i] = nil
			continue
		}
		vs := vals(fc.leaf)
		if len(vs) == 0 {
			return fmt.Errorf("column %q: no values", schema.Columns[i].Name)
		}
		var err error
		if fc.depth == 0 {
			c.Row[i], err = scalarOf(fc, vs[0], 1)
		} else if vs[0].DefinitionLevel() == 0 {
			c.Row[i] = nil
		} else {
			var rest []parquet.Value
			c.Row[i], rest, err = listOf(fc, vs, 1)
			if err == nil && len(rest) != 0 {
				err = fmt.Errorf("%d values left after the list", len(rest))
			}
		}
		if err != nil {
			return fmt.Errorf("column %q: %w", schema.Columns[i].Name, err)
		}
	}
	return nil
}

// scalarOf decodes a value whose definition level def means "present".
func scalarOf(fc *fileColumn, v parquet.Value, def int) (record.Value, error) {
	if v.DefinitionLevel() < def || v.IsNull() {
		return nil, nil
	}
	return fc.conv(v)
}

// listOf decodes the list at nesting level (1-based) starting at vs[0], mirroring
// rowBatch.appendList: definition level 2*level-1 is an empty list, +1 a null
// element, +2 a present element; later entries of this list repeat at level.
func listOf(fc *fileColumn, vs []parquet.Value, level int) ([]record.Value, []parquet.Value, error) {
	pdef := 2*level - 1
	if vs[0].DefinitionLevel() == pdef {
		return []record.Value{}, vs[1:], nil
	}
	out := []record.Value{}
	for {
		switch d := vs[0].DefinitionLevel(); {
		case d == pdef+1:
			out = append(out, nil)
			vs = vs[1:]
		case level < fc.depth:
			inner, rest, err := listOf(fc, vs, level+1)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, inner)
			vs = rest
		default:
			v, err := scalarOf(fc, vs[0], pdef+2)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, v)
			vs = vs[1:]
		}
		if len(vs) == 0 || vs[0].RepetitionLevel() != level {
			return out, vs, nil
		}
	}
}

// columnOf finds the leaf of a top-level field and builds its decoder for type want.
func columnOf(fsch *parquet.Schema, f parquet.Field, want record.Type) (fileColumn, error) {
	path := []string{f.Name()}
	var node parquet.Node = f
	depth := 0
	for isList(node) {
		fields := node.Fields()
		if len(fields) != 1 || len(fields[0].Fields()) != 1 {
			return fileColumn{}, fmt.Errorf("unexpected list layout")
		}
		elem := fields[0].Fields()[0]
		path = append(path, fields[0].Name(), elem.Name())
		node = elem
		depth++
	}
	leaf, ok := fsch.Lookup(path...)
	if !ok || leaf.Node == nil || !leaf.Node.Leaf() {
		return fileColumn{}, fmt.Errorf("unexpected layout")
	}
	if leaf.MaxDefinitionLevel != 1+2*depth {
		return fileColumn{}, fmt.Errorf("unexpected definition levels (%d)", leaf.MaxDefinitionLevel)
	}
	have, err := storedType(leaf.Node)
	if err != nil {
		return fileColumn{}, err
	}
	wantElem := want
	for range depth {
		if wantElem.Kind != record.KindList || wantElem.Elem == nil {
			return fileColumn{}, fmt.Errorf("stored as a list of depth %d, the table has %s", depth, want)
		}
		wantElem = *wantElem.Elem
	}
	if wantElem.Kind == record.KindList {
		return fileColumn{}, fmt.Errorf("stored as a list of depth %d, the table has %s", depth, want)
	}
	conv, err := converter(leaf.Node, have, wantElem)
	if err != nil {
		return fileColumn{}, err
	}
	return fileColumn{leaf: leaf.ColumnIndex, depth: depth, conv: conv}, nil
}

func isList(n parquet.Node) bool {
	lt := n.Type().LogicalType()
	if lt == nil || n.Leaf() {
		return false
	}
	_, ok := lt.Value.(*format.ListType)
	return ok
}

// storedType is the logical type a leaf was written as (schema.go's nodeOf in
// reverse). A STRING leaf reads as KindString and a DECIMAL(20,0) as a decimal: the
// table's type says whether they hold text fallbacks, decimal text or uint64s.
func storedType(n parquet.Node) (record.Type, error) {
	t := n.Type()
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		switch v := lt.Value.(type) {
		case *format.StringType:
			return record.Type{Kind: record.KindString}, nil
		case *format.JsonType:
			return record.Type{Kind: record.KindJSON}, nil
		case *format.UUIDType:
			return record.Type{Kind: record.KindUUID}, nil
		case *format.DateType:
			return record.Type{Kind: record.KindDate}, nil
		case *format.DecimalType:
			return record.Type{Kind: record.KindDecimal, Precision: int(v.Precision), Scale: int(v.Scale)}, nil
		case *format.IntType:
			// A plain INT32/INT64 leaf reads back with its INT(32/64) annotation.
			switch {
			case !v.IsSigned:
			case v.BitWidth == 16 && t.Kind() == parquet.Int32:
				return record.Type{Kind: record.KindInt16}, nil
			case v.BitWidth == 32 && t.Kind() == parquet.Int32:
				return record.Type{Kind: record.KindInt32}, nil
			case v.BitWidth == 64 && t.Kind() == parquet.Int64:
				return record.Type{Kind: record.KindInt64}, nil
			}
		case *format.TimeType:
			if isMicros(v.Unit) {
				return record.Type{Kind: record.KindTime}, nil
			}
		case *format.TimestampType:
			if isMicros(v.Unit) {
				if v.IsAdjustedToUTC {
					return record.Type{Kind: record.KindTimestampTZ}, nil
				}
				return record.Type{Kind: record.KindTimestamp}, nil
			}
		}
		return record.Type{}, fmt.Errorf("stored type %s %s is not one this destination writes", t.Kind(), lt)
	}
	switch t.Kind() {
	case parquet.Boolean:
		return record.Type{Kind: record.KindBool}, nil
	case parquet.Int32:
		return record.Type{Kind: record.KindInt32}, nil
	case parquet.Int64:
		return record.Type{Kind: record.KindInt64}, nil
	case parquet.Float:
		return record.Type{Kind: record.KindFloat32}, nil
	case parquet.Double:
		return record.Type{Kind: record.KindFloat64}, nil
	case parquet.ByteArray:
		return record.Type{Kind: record.KindBytes}, nil
	}
	return record.Type{}, fmt.Errorf("stored type %s is not one this destination writes", t.Kind())
}

// converter returns the decoder of a leaf stored as have into values of want, or
// an error naming both types when no exact conversion exists (README.md, "Reading
// the lake back").
func converter(n parquet.Node, have, want record.Type) (func(parquet.Value) (record.Value, error), error) {
	native, err := nativeOf(n, have)
	if err != nil {
		return nil, err
	}
	noWay := fmt.Errorf("stored as %s, the table has %s: no exact conversion", have, want)
	same := have.Kind == want.Kind && (have.Kind != record.KindDecimal || have.Precision == want.Precision && have.Scale == want.Scale)
	if same {
		return native, nil
	}
	then := func(f func(record.Value) (record.Value, error)) func(parquet.Value) (record.Value, error) {
		return func(v parquet.Value) (record.Value, error) {
			x, err := native(v)
			if err != nil {
				return nil, err
			}
			y, err := f(x)
			if err != nil {
				return nil, fmt.Errorf("%v stored as %s: %w", x, have, err)
			}
			return y, nil
		}
	}
	intText := func(x record.Value) string {
		switch x := x.(type) {
		case int16:
			return strconv.FormatInt(int64(x), 10)
		case int32:
			return strconv.FormatInt(int64(x), 10)
		case int64:
			return strconv.FormatInt(x, 10)
		}
		return string(x.(record.Decimal))
	}
	isInt := have.Kind == record.KindInt16 || have.Kind == record.KindInt32 || have.Kind == record.KindInt64
	switch want.Kind {
	case record.KindInt32:
		if have.Kind == record.KindInt16 {
			return then(func(x record.Value) (record.Value, error) { return int32(x.(int16)), nil }), nil
		}
	case record.KindInt64:
		switch have.Kind {
		case record.KindInt16:
			return then(func(x record.Value) (record.Value, error) { return int64(x.(int16)), nil }), nil
		case record.KindInt32:
			return then(func(x record.Value) (record.Value, error) { return int64(x.(int32)), nil }), nil
		}
	case record.KindFloat64:
		switch have.Kind {
		case record.KindFloat32:
			return then(func(x record.Value) (record.Value, error) { return float64(x.(float32)), nil }), nil
		case record.KindInt16:
			return then(func(x record.Value) (record.Value, error) { return float64(x.(int16)), nil }), nil
		case record.KindInt32:
			return then(func(x record.Value) (record.Value, error) { return float64(x.(int32)), nil }), nil
		}
	case record.KindUint64:
		if isInt || have.Kind == record.KindDecimal && have.Scale == 0 {
			return then(func(x record.Value) (record.Value, error) {
				u, err := strconv.ParseUint(intText(x), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("not a uint64")
				}
				return u, nil
			}), nil
		}
	case record.KindDecimal, record.KindDecimalText:
		fallback := want.Kind == record.KindDecimalText ||
			want.Precision < 1 || want.Precision > 38 || want.Scale < 0 || want.Scale > want.Precision
		switch {
		case have.Kind == record.KindString && fallback:
			return then(func(x record.Value) (record.Value, error) { return record.Decimal(x.(string)), nil }), nil
		case isInt || have.Kind == record.KindDecimal:
			return then(func(x record.Value) (record.Value, error) {
				if fallback {
					// decimal text keeps the source's own digits; an integer or a
					// DECIMAL converts exactly at the stored scale.
					return record.Decimal(intText(x)), nil
				}
				return rescale(intText(x), want.Precision, want.Scale)
			}), nil
		}
	case record.KindString:
		if have.Kind == record.KindJSON {
			return then(func(x record.Value) (record.Value, error) { return string(x.(record.JSON)), nil }), nil
		}
	}
	return nil, noWay
}

// nativeOf decodes a non-null value of a leaf as the Go type of its stored type,
// undoing the writer's adjustments (the DuckDB-friendly -infinity forms).
func nativeOf(n parquet.Node, have record.Type) (func(parquet.Value) (record.Value, error), error) {
	switch have.Kind {
	case record.KindBool:
		return func(v parquet.Value) (record.Value, error) { return v.Boolean(), nil }, nil
	case record.KindInt16:
		return func(v parquet.Value) (record.Value, error) { return int16(v.Int32()), nil }, nil
	case record.KindInt32:
		return func(v parquet.Value) (record.Value, error) { return v.Int32(), nil }, nil
	case record.KindInt64:
		return func(v parquet.Value) (record.Value, error) { return v.Int64(), nil }, nil
	case record.KindFloat32:
		return func(v parquet.Value) (record.Value, error) { return v.Float(), nil }, nil
	case record.KindFloat64:
		return func(v parquet.Value) (record.Value, error) { return v.Double(), nil }, nil
	case record.KindString:
		return func(v parquet.Value) (record.Value, error) { return string(v.ByteArray()), nil }, nil
	case record.KindBytes:
		return func(v parquet.Value) (record.Value, error) { return slices.Clone(v.ByteArray()), nil }, nil
	case record.KindJSON:
		return func(v parquet.Value) (record.Value, error) { return record.JSON(slices.Clone(v.ByteArray())), nil }, nil
	case record.KindDate:
		return func(v parquet.Value) (record.Value, error) {
			d := v.Int32()
			if d == duckDateNegInfinity {
				d = math.MinInt32
			}
			return record.Date(d), nil
		}, nil
	case record.KindTime:
		return func(v parquet.Value) (record.Value, error) { return record.Time(v.Int64()), nil }, nil
	case record.KindTimestamp, record.KindTimestampTZ:
		return func(v parquet.Value) (record.Value, error) {
			ts := record.Timestamp(v.Int64())
			if ts == duckNegInfinity {
				ts = record.TimestampNegInfinity
			}
			return ts, nil
		}, nil
	case record.KindUUID:
		return func(v parquet.Value) (record.Value, error) {
			var u record.UUID
			if len(v.ByteArray()) != len(u) {
				return nil, fmt.Errorf("uuid of %d bytes", len(v.ByteArray()))
			}
			copy(u[:], v.ByteArray())
			return u, nil
		}, nil
	case record.KindDecimal:
		scale := have.Scale
		switch n.Type().Kind() {
		case parquet.Int32:
			return func(v parquet.Value) (record.Value, error) {
				return record.Decimal(withScale(strconv.FormatInt(int64(v.Int32()), 10), scale)), nil
			}, nil
		case parquet.Int64:
			return func(v parquet.Value) (record.Value, error) {
				return record.Decimal(withScale(strconv.FormatInt(v.Int64(), 10), scale)), nil
			}, nil
		case parquet.FixedLenByteArray:
			return func(v parquet.Value) (record.Value, error) {
				return record.Decimal(withScale(twosComplement(v.ByteArray()).String(), scale)), nil
			}, nil
		}
		return nil, fmt.Errorf("DECIMAL stored as %s", n.Type().Kind())
	}
	return nil, fmt.Errorf("no decoder for %s", have)
}

// twosComplement reads a big-endian two's complement integer.
func twosComplement(b []byte) *big.Int {
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x
}

// withScale renders an unscaled integer's decimal digits with scale fractional
// digits: "-1234", 2 is "-12.34"; "5", 3 is "0.005".
func withScale(digits string, scale int) string {
	if scale <= 0 {
		return digits
	}
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	s := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

// rescale renders exact decimal text at another scale, refusing to drop a non-zero
// digit or to exceed the precision.
func rescale(text string, precision, scale int) (record.Value, error) {
	hi, lo, err := unscaled(text, precision, scale)
	if err != nil {
		return nil, err
	}
	neg := hi>>63 != 0
	x := new(big.Int).SetUint64(hi)
	x.Lsh(x, 64).Or(x, new(big.Int).SetUint64(lo))
	if neg {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return record.Decimal(withScale(x.String(), scale)), nil
}

func isMicros(u format.TimeUnit) bool {
	_, ok := u.Value.(*format.MicroSeconds)
	return ok
}
