package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/connectd/connectd/connector"
)

// selectionKey names, in the connector's state store, the tables patterns in force
// when the connector last started: a table they did not select then has none of its
// rows in the lake, and the stream alone cannot bring them.
const selectionKey = "mysql-selection"

type selectionState struct {
	Version  int      `json:"version"`
	Patterns []string `json:"patterns"`
}

func (s *Source) saveSelection(ctx context.Context) error {
	if s.state == nil {
		return nil
	}
	st := selectionState{Version: 1}
	for _, p := range s.st.patterns {
		st.Patterns = append(st.Patterns, p.String())
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("mysql: encode the tables patterns: %w", err)
	}
	if err := s.state.Save(ctx, selectionKey, data); err != nil {
		return fmt.Errorf("mysql: save the tables patterns: %w", err)
	}
	return nil
}

// checkSelection stops the connector, when it resumes a committed position, if the
// tables patterns now select a table that existed at that position but that they
// did not select before (the config changed): its existing rows were never read.
// Tables created after the position are fine: the binlog has all their rows.
func (s *Source) checkSelection(ctx context.Context) error {
	if s.state == nil {
		return nil
	}
	data, err := s.state.Load(ctx, selectionKey)
	if err != nil {
		return fmt.Errorf("mysql: load the tables patterns: %w", err)
	}
	var old selectionState
	if len(data) == 0 || json.Unmarshal(data, &old) != nil || old.Version != 1 {
		return s.saveSelection(ctx) // nothing to compare with (an older connectd)
	}
	before := settings{}
	for _, p := range old.Patterns {
		db, name, _ := strings.Cut(p, ".")
		before.patterns = append(before.patterns, pattern{db: db, table: name})
	}
	var added []string
	for t := range s.cat.tables {
		if s.st.selected(t) && !before.selected(t) {
			added = append(added, t.String())
		}
	}
	// A database the old patterns did not cover has no schema history at all: each
	// of its selected tables, whenever created, is unread.
	fresh, err := listTables(ctx, s.db, func(db string) bool { return s.st.tracked(db) && !before.tracked(db) })
	if err != nil {
		return err
	}
	for _, t := range fresh {
		if s.st.selected(t) {
			added = append(added, t.String())
		}
	}
	if len(added) > 0 {
		sort.Strings(added)
		return connector.Permanent(fmt.Errorf("mysql: the tables patterns now select %s, which existed before the committed position but were not selected (patterns were %s): their existing rows were never read and the binlog cannot bring them; run `connectd offsets reset %s` to snapshot every table again, or leave them out of tables",
			strings.Join(added, ", "), strings.Join(old.Patterns, ", "), s.st.name))
	}
	return s.saveSelection(ctx)
}

// renamedIn returns the selected tables a statement brought in under a new name
// from a table the patterns do not select: the stream has none of their rows from
// before the rename.
func (s *Source) renamedIn(before map[tableName]*tableDef, touched []tableName) []tableName {
	var appeared []tableName
	vanished := false
	for _, t := range touched {
		_, was := before[t]
		_, is := s.cat.tables[t]
		switch {
		case is && !was && s.st.selected(t):
			appeared = append(appeared, t)
		case was && !is && !s.st.selected(t):
			vanished = true
		}
	}
	if !vanished {
		return nil
	}
	return appeared
}

// renamedInError is the error for tables renamed into the patterns from tables whose
// rows the connector never read.
func (st *streamer) renamedInError(sql string, offset uint64, in []tableName) error {
	names := make([]string, len(in))
	for i, t := range in {
		names[i] = t.String()
	}
	return connector.Permanent(fmt.Errorf("mysql: %s at %s:%d renames a table the tables patterns do not select (or from a database they do not cover) to %s, which they select: its rows from before the rename were never read and the binlog cannot bring them; run `connectd offsets reset %s` to snapshot again, or leave it out of tables",
		sql, st.file, offset, strings.Join(names, ", "), st.s.st.name))
}

var renameStmt = regexp.MustCompile(`(?is)^\s*(RENAME\s+TABLES?\b|ALTER\s+(ONLINE\s+|IGNORE\s+)*TABLE\b.*\bRENAME\b)`)

// isRename reports whether a statement renames a table (RENAME TABLE, ALTER TABLE
// ... RENAME [TO]). It is asked only about a statement that made a selected table
// appear, which nothing but a CREATE or a rename does.
func isRename(sql string) bool { return renameStmt.MatchString(sql) }
