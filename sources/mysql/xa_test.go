package mysql

import "testing"

func TestClassifyQuery(t *testing.T) {
	for _, c := range []struct {
		q    string
		kind queryKind
		xid  string
	}{
		{"BEGIN", queryBegin, ""},
		{"START TRANSACTION", queryBegin, ""},
		{"COMMIT", queryCommit, ""},
		{"ROLLBACK", queryRollback, ""},
		{"SAVEPOINT `a`", querySavepoint, ""},
		{"ROLLBACK TO `a`", querySavepoint, ""},
		{"rollback to savepoint a", querySavepoint, ""},
		{"RELEASE SAVEPOINT `b`", querySavepoint, ""},
		{"XA START X'7831',X'',1", queryXAStart, "X'7831',X'',1"},
		{"XA END X'7831',X'',1", queryXAEnd, "X'7831',X'',1"},
		{"XA COMMIT X'7831',X'',1", queryXACommit, "X'7831',X'',1"},
		{"XA ROLLBACK X'7832',X'',1", queryXARollback, "X'7832',X'',1"},
		{"CREATE TABLE `x`.`c` (`id` int(11) NOT NULL)", queryOther, ""},
		{"SAVEPOINTS_TABLE_DROP", queryOther, ""},
	} {
		kind, xid := classifyQuery(c.q)
		if kind != c.kind || xid != c.xid {
			t.Errorf("classifyQuery(%q) = %d, %q; want %d, %q", c.q, kind, xid, c.kind, c.xid)
		}
	}
}
