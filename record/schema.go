package record

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// Kind is a logical type: what a value means, independent of the source's type name.
type Kind uint8

// The logical kinds. The Go type that carries a non-null value of each kind is given
// beside it; destinations may rely on it.
const (
	KindInvalid     Kind = iota
	KindBool             // bool
	KindInt16            // int16
	KindInt32            // int32
	KindInt64            // int64
	KindUint64           // uint64 (MySQL BIGINT UNSIGNED); lake type DECIMAL(20,0)
	KindFloat32          // float32 (NaN, ±Inf kept)
	KindFloat64          // float64 (NaN, ±Inf kept)
	KindDecimal          // Decimal, with Type.Precision <= 38 and Type.Scale
	KindDecimalText      // Decimal of any precision, or NaN; lake type STRING
	KindString           // string
	KindBytes            // []byte
	KindDate             // Date
	KindTime             // Time (microseconds since midnight, 0..86400000000)
	KindTimestamp        // Timestamp (not adjusted to UTC: a wall-clock time)
	KindTimestampTZ      // Timestamp (an instant, microseconds since the Unix epoch UTC)
	KindUUID             // UUID
	KindJSON             // JSON
	KindList             // []Value of Type.Elem
)

var kindNames = [...]string{
	KindInvalid: "invalid", KindBool: "bool", KindInt16: "int16", KindInt32: "int32",
	KindInt64: "int64", KindUint64: "uint64", KindFloat32: "float32", KindFloat64: "float64",
	KindDecimal: "decimal", KindDecimalText: "decimal_text", KindString: "string",
	KindBytes: "bytes", KindDate: "date", KindTime: "time", KindTimestamp: "timestamp",
	KindTimestampTZ: "timestamptz", KindUUID: "uuid", KindJSON: "json", KindList: "list",
}

// String is the kind's name as shown by discover.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Type is a logical type with its parameters.
type Type struct {
	Kind      Kind
	Precision int   // KindDecimal: 1..38
	Scale     int   // KindDecimal, KindDecimalText when known (-1 unknown)
	Elem      *Type // KindList
}

// String renders the type as discover shows it: decimal(10,2), list<int32>.
func (t Type) String() string {
	switch t.Kind {
	case KindDecimal:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case KindList:
		if t.Elem == nil {
			return "list<?>"
		}
		return "list<" + t.Elem.String() + ">"
	}
	return t.Kind.String()
}

// Column describes one column of a table.
type Column struct {
	Name       string
	SourceType string // the source's own type name, e.g. "numeric(10,2)", "int unsigned"
	Type       Type
	Nullable   bool
	Key        bool // part of the primary key or replica identity
}

// Schema is one version of a table's shape. Schemas are immutable once built; a DDL
// change produces a new *Schema with a different Fingerprint.
type Schema struct {
	Namespace string
	Table     string
	Columns   []Column
	// Version counts the schema versions a source has seen for this table, starting at 1.
	// It is informational; Fingerprint is what tells two shapes apart.
	Version int
	fp      string
}

// NewSchema builds a schema and computes its fingerprint.
func NewSchema(namespace, table string, cols []Column) *Schema {
	s := &Schema{Namespace: namespace, Table: table, Columns: cols, Version: 1}
	s.fp = fingerprint(s)
	return s
}

// Fingerprint is a short hex digest of the column names, logical types, nullability
// and key flags. Two schemas with the same fingerprint write the same Parquet schema.
func (s *Schema) Fingerprint() string {
	if s.fp == "" {
		s.fp = fingerprint(s)
	}
	return s.fp
}

// KeyIndexes returns the positions of the key columns, in column order.
func (s *Schema) KeyIndexes() []int {
	var idx []int
	for i, c := range s.Columns {
		if c.Key {
			idx = append(idx, i)
		}
	}
	return idx
}

// Index returns the position of the named column, or -1.
func (s *Schema) Index(name string) int {
	for i, c := range s.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// QualifiedName is namespace.table.
func (s *Schema) QualifiedName() string { return s.Namespace + "." + s.Table }

func fingerprint(s *Schema) string {
	h := sha256.New()
	var b strings.Builder
	for _, c := range s.Columns {
		b.Reset()
		fmt.Fprintf(&b, "%s\x00%s\x00%t\x00%t\x00", c.Name, c.Type.String(), c.Nullable, c.Key)
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(b.Len()))
		h.Write(n[:])
		h.Write([]byte(b.String()))
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:8])
}
