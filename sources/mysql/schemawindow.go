package mysql

import (
	"context"
	"fmt"
	"strings"
)

// snapshotAttempts bounds how often a snapshot is taken again because DDL ran
// while its table definitions were read.
const snapshotAttempts = 5

// ddlSince returns the first DDL statement on a tracked database written to the
// binlog between the snapshot's coordinates from and the binlog's end now, or ""
// when there is none.
//
// SHOW CREATE TABLE is not part of the consistent snapshot: it reads the table's
// definition as it is now. A DDL committed after the snapshot's point but before
// that read is then in the base definitions already and in the binlog the stream
// reads from that point, where it would be applied a second time (ADD COLUMN of a
// column there already) and the row images before it would not match. The caller
// takes the snapshot again when this finds one; in the usual case nothing was
// written in between and no binlog is read.
func (s *Source) ddlSince(ctx context.Context, from coords) (string, error) {
	end, err := masterStatus(ctx, s.db)
	if err != nil {
		return "", err
	}
	if !before(from, end) {
		return "", nil
	}
	files, err := binlogFiles(ctx, s.db)
	if err != nil {
		return "", err
	}
	reading := false
	for _, f := range files {
		if f == from.file {
			reading = true
		}
		if !reading {
			continue
		}
		offset := uint64(4) // past the magic number
		if f == from.file {
			offset = from.offset
		}
		stmt, err := s.ddlInFile(ctx, f, offset, end)
		if err != nil || stmt != "" || f == end.file {
			return stmt, err
		}
	}
	return "", nil
}

// ddlInFile scans one binlog file from offset up to end for a DDL statement on a
// tracked database.
func (s *Source) ddlInFile(ctx context.Context, file string, offset uint64, end coords) (string, error) {
	what := fmt.Sprintf("SHOW BINLOG EVENTS IN %s FROM %d", file, offset)
	rows, err := s.db.QueryContext(ctx, "SHOW BINLOG EVENTS IN ? FROM ?", file, offset)
	if err != nil {
		return "", classify(what, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", classify(what, err)
	}
	var pos uint64
	var typ, info string
	vals := make([]any, len(cols))
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "pos":
			vals[i] = &pos
		case "event_type":
			vals[i] = &typ
		case "info":
			vals[i] = &info
		default:
			vals[i] = new(any)
		}
	}
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return "", classify(what, err)
		}
		if file == end.file && pos >= end.offset {
			break
		}
		if typ != "Query" {
			continue
		}
		if db, sql := splitUse(info); s.isTrackedDDL(sql, db) {
			return sql, nil
		}
	}
	if err := rows.Err(); err != nil {
		return "", classify(what, err)
	}
	return "", nil
}

// splitUse splits SHOW BINLOG EVENTS' "use `db`; statement" into its parts.
func splitUse(info string) (db, sql string) {
	if !strings.HasPrefix(info, "use ") {
		return "", info
	}
	name, rest, ok := strings.Cut(info[len("use "):], "; ")
	if !ok {
		return "", info
	}
	return strings.ReplaceAll(strings.Trim(name, "`"), "``", "`"), rest
}

// isTrackedDDL reports whether a statement may change the definitions of a tracked
// database: one that parses as a DDL on it, or one that does not parse at all.
func (s *Source) isTrackedDDL(sql, db string) bool {
	d, err := parseDDL(sql, db)
	if err != nil {
		return d == nil || s.st.tracked(d.table.db)
	}
	switch d.kind {
	case stmtOther:
		return false
	case stmtDrop, stmtDropSeq:
		for _, t := range d.tables {
			if s.st.tracked(t.db) {
				return true
			}
		}
		return false
	case stmtRename:
		for _, r := range d.renames {
			if s.st.tracked(r[0].db) || s.st.tracked(r[1].db) {
				return true
			}
		}
		return false
	case stmtDropDB, stmtDBCharset:
		return s.st.tracked(d.db)
	case stmtServerCharset:
		return false
	}
	return s.st.tracked(d.table.db)
}

// binlogFiles lists the server's binlog files, oldest first.
func binlogFiles(ctx context.Context, q queryer) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, classify("SHOW BINARY LOGS", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, classify("SHOW BINARY LOGS", err)
	}
	var name string
	vals := make([]any, len(cols))
	vals[0] = &name
	for i := 1; i < len(vals); i++ {
		vals[i] = new(any)
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return nil, classify("SHOW BINARY LOGS", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("SHOW BINARY LOGS", err)
	}
	return out, nil
}
