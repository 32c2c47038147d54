package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/connectd/connectd/connector"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
)

// binlogFile is one row of SHOW BINARY LOGS.
type binlogFile struct {
	name string
	size uint64
}

// binaryLogs lists the binlog files the server still has, oldest first.
func binaryLogs(ctx context.Context, q queryer) ([]binlogFile, error) {
	rows, err := q.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, classify("SHOW BINARY LOGS", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, classify("SHOW BINARY LOGS", err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []binlogFile
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, classify("SHOW BINARY LOGS", err)
		}
		f := binlogFile{name: vals[0].String, size: ^uint64(0)}
		if len(vals) > 1 {
			if n, err := strconv.ParseUint(vals[1].String, 10, 64); err == nil {
				f.size = n
			}
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("SHOW BINARY LOGS", err)
	}
	return out, nil
}

// checkResumable fails permanently, before anything is read, when the server cannot
// give the binlog from the resume point from on: the file was purged, the offset lies
// past the file's end, or the GTIDs executed before from are not all executed on this
// server (offsets restored onto another server, or its binlog reset). Streaming
// anyway would silently skip the changes in between (docs/reliability.md).
func (s *Source) checkResumable(ctx context.Context, from coords) error {
	reset := fmt.Sprintf("run `connectd offsets reset %s` to snapshot again", s.st.name)
	// The GTIDs first: on another server the file names may well exist too.
	if err := s.checkGTIDs(ctx, from, reset); err != nil {
		return err
	}
	files, err := binaryLogs(ctx, s.db)
	if err != nil {
		return err
	}
	var found *binlogFile
	for i := range files {
		if files[i].name == from.file {
			found = &files[i]
		}
	}
	if found == nil {
		oldest := "none"
		if len(files) > 0 {
			oldest = files[0].name
		}
		return connector.Permanent(fmt.Errorf("mysql: binlog %s, where the committed position resumes (%s), is no longer on the server (oldest left: %s): it was purged (PURGE BINARY LOGS or binlog_expire_logs_seconds), so the changes since that position are lost to this connector; %s, and keep binlogs longer than the connector may be down",
			from.file, from, oldest, reset))
	}
	if from.offset > found.size {
		return connector.Permanent(fmt.Errorf("mysql: the committed position resumes at %s, past the end of that file on the server (%d bytes): the file was replaced (RESET MASTER, or the offsets come from another server); %s",
			from, found.size, reset))
	}
	return nil
}

// checkGTIDs checks that the server has executed every GTID the resume point says
// was executed before it.
func (s *Source) checkGTIDs(ctx context.Context, from coords, reset string) error {
	if from.gtid == "" {
		return nil
	}
	want, err := gmysql.ParseGTIDSet(s.flavor, from.gtid)
	if err != nil {
		return connector.Permanent(fmt.Errorf("mysql: GTID set %q in the committed position: %w", from.gtid, err))
	}
	variable := "gtid_executed"
	if s.flavor == "mariadb" {
		// Every domain-server pair's last GTID in the binlog; kept across PURGE,
		// cleared by RESET MASTER.
		variable = "gtid_binlog_state"
	}
	var raw sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT @@GLOBAL."+variable).Scan(&raw); err != nil {
		return classify("read @@"+variable, err)
	}
	have, err := gmysql.ParseGTIDSet(s.flavor, raw.String)
	if err != nil {
		return fmt.Errorf("mysql: the server's %s %q: %w", variable, raw.String, err)
	}
	if have.Contain(want) {
		return nil
	}
	return connector.Permanent(fmt.Errorf("mysql: the committed position (%s) follows GTIDs %s, but this server's %s is %q: it has not executed all of them, so the offsets belong to another server or this server's binlog was reset (RESET MASTER); the binlog here does not continue from that position; %s",
		from, from.gtid, variable, raw.String, reset))
}
