package parquet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/connectd/connectd/record"
)

// The metadata columns every file carries after the table's columns (docs/design.md,
// "Lake layout").
const (
	colOp        = "_op"
	colPos       = "_pos"
	colCommitTS  = "_commit_ts"
	colTxID      = "_txid"
	colUnchanged = "_unchanged"
)

// fileSchema is the Parquet shape of one record.Schema, built once per fingerprint.
type fileSchema struct {
	parquet *parquet.Schema
	columns []colInfo // one per table column, aligned with record.Schema.Columns
	// leaves is the number of leaf columns: every table column has exactly one (a list
	// has one leaf for its innermost element), then the five metadata leaves.
	leaves int
}

// colInfo is what the row builder needs to know about one table column.
type colInfo struct {
	name  string
	typ   record.Type
	leaf  int // index of the column's leaf in the Parquet schema
	flba  int // FIXED_LEN_BYTE_ARRAY length for decimal/uint64 columns
	depth int // list nesting depth: 0 for a scalar column
	// elem is the innermost element type of a list column (typ itself for scalars).
	elem *record.Type
	// fallback, when set, says why the column is written as text instead of its
	// usual mapping; it is logged once when the schema is built.
	fallback string
}

// fileFingerprint tells apart the record schemas that need different Parquet
// files: those with other column names or logical types. Nullability and key flags
// are left out, as buildSchema makes every column optional either way. They must be:
// a source may describe the same change with other flags when it replays it (the
// postgres source reads them from the catalog as it is when the stream restarts,
// after an ALTER TABLE ... DROP NOT NULL), and a replay must write the records to
// files of the same names, or the first run's files stay beside the replay's and
// their records appear twice (docs/reliability.md).
func fileFingerprint(s *record.Schema) string {
	h := sha256.New()
	var n [4]byte
	for _, c := range s.Columns {
		t := c.Type.String()
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Name)))
		h.Write(n[:])
		h.Write([]byte(c.Name))
		binary.BigEndian.PutUint32(n[:], uint32(len(t)))
		h.Write(n[:])
		h.Write([]byte(t))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// buildSchema maps a record schema to Parquet (README.md, "Type mapping"). Every table column is
// optional, even when NOT NULL at the source, because delete records carry key-only
// before images and truncates carry no values at all.
func buildSchema(s *record.Schema) (*fileSchema, error) {
	fs := &fileSchema{columns: make([]colInfo, len(s.Columns))}
	fields := make(orderedGroup, 0, len(s.Columns)+5)
	seen := make(map[string]bool, len(s.Columns)+5)
	for i, c := range s.Columns {
		if seen[c.Name] {
			return nil, fmt.Errorf("column %q appears twice", c.Name)
		}
		seen[c.Name] = true
		if strings.HasPrefix(c.Name, "_") {
			switch c.Name {
			case colOp, colPos, colCommitTS, colTxID, colUnchanged:
				return nil, fmt.Errorf("column %q collides with a metadata column", c.Name)
			}
		}
		node, info, err := nodeOf(c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		info.name = c.Name
		info.leaf = i
		fs.columns[i] = info
		fields = append(fields, field{parquet.Optional(node), c.Name})
	}
	fields = append(fields,
		field{parquet.String(), colOp},
		field{parquet.String(), colPos},
		field{parquet.TimestampAdjusted(parquet.Microsecond, true), colCommitTS},
		field{parquet.Optional(parquet.String()), colTxID},
		field{parquet.Optional(parquet.List(parquet.String())), colUnchanged},
	)
	fs.leaves = len(s.Columns) + 5
	fs.parquet = parquet.NewSchema(s.Table, fields)
	return fs, nil
}

// nodeOf returns the Parquet node of a logical type (without its own optionality).
func nodeOf(t record.Type) (parquet.Node, colInfo, error) {
	scalar := t
	info := colInfo{typ: t, elem: &scalar}
	switch t.Kind {
	case record.KindBool:
		return parquet.Leaf(parquet.BooleanType), info, nil
	case record.KindInt16:
		return parquet.Int(16), info, nil
	case record.KindInt32:
		return parquet.Leaf(parquet.Int32Type), info, nil
	case record.KindInt64:
		return parquet.Leaf(parquet.Int64Type), info, nil
	case record.KindUint64:
		info.flba = decimalBytes(20)
		return parquet.Decimal(0, 20, parquet.FixedLenByteArrayType(info.flba)), info, nil
	case record.KindFloat32:
		return parquet.Leaf(parquet.FloatType), info, nil
	case record.KindFloat64:
		return parquet.Leaf(parquet.DoubleType), info, nil
	case record.KindDecimal:
		p, s := t.Precision, t.Scale
		if p < 1 || p > 38 || s < 0 || s > p {
			// Postgres 15 allows numeric(2,5) and numeric(5,-2); Parquet's DECIMAL
			// does not. Keep the exact text instead: a value without a mapping
			// must never crash (docs/design.md, "Values").
			scalar.Kind = record.KindDecimalText
			info.fallback = fmt.Sprintf("decimal(%d,%d) is outside Parquet DECIMAL's range; writing exact decimal text (STRING)", p, s)
			return parquet.String(), info, nil
		}
		switch {
		case p <= 9:
			return parquet.Decimal(s, p, parquet.Int32Type), info, nil
		case p <= 18:
			return parquet.Decimal(s, p, parquet.Int64Type), info, nil
		}
		info.flba = decimalBytes(p)
		return parquet.Decimal(s, p, parquet.FixedLenByteArrayType(info.flba)), info, nil
	case record.KindDecimalText, record.KindString:
		return parquet.String(), info, nil
	case record.KindBytes:
		return parquet.Leaf(parquet.ByteArrayType), info, nil
	case record.KindDate:
		return parquet.Date(), info, nil
	case record.KindTime:
		return parquet.TimeAdjusted(parquet.Microsecond, false), info, nil
	case record.KindTimestamp:
		return parquet.TimestampAdjusted(parquet.Microsecond, false), info, nil
	case record.KindTimestampTZ:
		return parquet.TimestampAdjusted(parquet.Microsecond, true), info, nil
	case record.KindUUID:
		return parquet.UUID(), info, nil
	case record.KindJSON:
		return parquet.JSON(), info, nil
	case record.KindList:
		if t.Elem == nil {
			return nil, info, fmt.Errorf("list without an element type")
		}
		elem, einfo, err := nodeOf(*t.Elem)
		if err != nil {
			return nil, info, err
		}
		einfo.depth++
		einfo.typ = t
		return parquet.List(parquet.Optional(elem)), einfo, nil
	}
	return nil, info, fmt.Errorf("no Parquet mapping for %s", t)
}

// decimalBytes is the smallest FIXED_LEN_BYTE_ARRAY length whose two's complement
// range holds every unscaled value of the given precision.
func decimalBytes(precision int) int {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(precision)), nil)
	for n := 1; ; n++ {
		max := new(big.Int).Lsh(big.NewInt(1), uint(8*n-1))
		if max.Cmp(limit) >= 0 {
			return n
		}
	}
}

// orderedGroup is a group node whose fields keep the order they were given in.
// parquet.Group is a map and sorts its fields by name, which would scramble the
// table's column order and put the metadata columns in the middle.
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return parquet.NewSchema("", g).String() }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }
func (f field) Name() string                       { return f.name }
func (f field) Value(reflect.Value) reflect.Value  { return reflect.Value{} }

// field names a node inside an orderedGroup. Rows are built by hand (rows.go), so
// the reflection hook Value is never used.
type field struct {
	parquet.Node
	name string
}
