package postgres

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"public.orders", "public.orders", true},
		{"public.orders", "public.orders2", false},
		{"public.line_*", "public.line_items", true},
		{"public.line_*", "public.line_", true},
		{"public.line_*", "public.lines", false},
		{"*.orders", "sales.orders", true},
		{"public.?rders", "public.orders", true},
		{"public.?rders", "public.rders", false},
		{"*", "a.b", true},
		{"public.*_log", "public.a_b_log", true},
		{"public.*_log", "public.a_b_log_x", false},
		{"Public.orders", "public.orders", false},
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.name); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestMatchTablesNamesEmptyPattern(t *testing.T) {
	all := []table{{oid: 1, schema: "public", name: "a"}, {oid: 2, schema: "public", name: "b"}}
	got, _, err := matchTables(all, []string{"public.*", "public.a"})
	if err != nil || len(got) != 2 {
		t.Fatalf("matchTables = %v, %v; want both tables once", got, err)
	}
	_, _, err = matchTables(all, []string{"public.a", "other.b"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`"other.b"`)) {
		t.Fatalf("want an error naming the empty pattern, got %v", err)
	}
	// A glob may match nothing yet: tables created later are picked up.
	if got, _, err := matchTables(all, []string{"public.a", "other.*"}); err != nil || len(got) != 1 {
		t.Fatalf("matchTables with a glob matching nothing = %v, %v; want public.a and no error", got, err)
	}
}

func TestPositionsOrderAndDescribe(t *testing.T) {
	snap := func(e, tb, row uint32) record.Position {
		p := make(record.Position, snapshotPosLen)
		putSnapshotPos(p, e, tb, 0, row)
		return p
	}
	chunk := func(c, row uint32) record.Position {
		p := make(record.Position, snapshotPosLen)
		putSnapshotPos(p, 1, 2, c, row)
		return p
	}
	keyed := withKey(chunk(0, 2048), [][]byte{[]byte("it's"), []byte(`a\b`)})
	strm := func(lsn pglogrepl.LSN, seq uint32) record.Position {
		p := make(record.Position, streamPosLen)
		putStreamPos(p, lsn, seq)
		return p
	}
	done := append(snap(1, 2, 300), snapshotDoneByte)
	ordered := []record.Position{
		snap(1, 0, 1), snap(1, 0, 2), snap(1, 0, 256), snap(1, 1, 1), snap(1, 2, 300), done,
		chunk(0, 2047), keyed, chunk(0, 2049), chunk(1, 1), chunk(1, 70000), chunk(2, 1),
		snap(2, 0, 1), strm(0x16B3748, 0), strm(0x16B3748, 1), strm(0x16B3749, 0), strm(1<<40, 0),
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i-1].Compare(ordered[i]) >= 0 {
			t.Errorf("position %d (%s) does not sort before %d (%s)", i-1, ordered[i-1], i, ordered[i])
		}
	}
	names := func(i uint32) string {
		if i == 2 {
			return "public.orders"
		}
		return ""
	}
	for _, c := range []struct {
		pos  record.Position
		want string
	}{
		{snap(1, 2, 1234), "snapshot epoch 1 table public.orders chunk 0 row 1234"},
		{snap(3, 7, 1), "snapshot epoch 3 table #7 chunk 0 row 1"},
		{chunk(5, 9), "snapshot epoch 1 table public.orders chunk 5 row 9"},
		{keyed, `snapshot epoch 1 table public.orders chunk 0 row 2048 key ["it's" "a\\b"]`},
		{done, "snapshot epoch 1 table public.orders chunk 0 row 300 (snapshot complete)"},
		{strm(0x16B3748, 3), "lsn 0/16B3748 #3"},
	} {
		if got := describePosition(c.pos, names); got != c.want {
			t.Errorf("describe %s = %q, want %q", c.pos, got, c.want)
		}
	}
	if sp, ok := parseSnapshotPos(done); !ok || !sp.done || sp.row != 300 {
		t.Errorf("parseSnapshotPos(done) = %+v, %v", sp, ok)
	}
	if _, ok := parseSnapshotPos(append(snap(1, 2, 3), 0x00)); ok {
		t.Error("an 18-byte snapshot position without the marker byte parsed")
	}
	if sp, ok := parseSnapshotPos(keyed); !ok || sp.done || sp.chunk != 0 || sp.row != 2048 || !reflect.DeepEqual(sp.key, []string{"it's", `a\b`}) {
		t.Errorf("parseSnapshotPos(keyed) = %+v, %v", sp, ok)
	}
	for n := snapshotPosLen + 1; n < len(keyed); n++ {
		if _, ok := parseSnapshotPos(keyed[:n]); ok {
			t.Errorf("a keyed position cut to %d bytes parsed", n)
		}
	}
	if lsn, seq, ok := parseStreamPos(strm(42, 7)); !ok || lsn != 42 || seq != 7 {
		t.Errorf("parseStreamPos = %v %v %v", lsn, seq, ok)
	}
}

func TestParseTuple(t *testing.T) {
	msg := []byte{0, 4, 'n', 'u', 't', 0, 0, 0, 3, 'a', 'b', 'c', 't', 0, 0, 0, 0, 'N', 'x'}
	cols, rest, err := parseTuple(msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 4 || cols[0].kind != 'n' || cols[1].kind != 'u' || string(cols[2].data) != "abc" || cols[3].kind != 't' || len(cols[3].data) != 0 {
		t.Fatalf("cols = %+v", cols)
	}
	if string(rest) != "Nx" {
		t.Fatalf("rest = %q", rest)
	}
	for _, bad := range [][]byte{{0}, {0, 1}, {0, 1, 't', 0, 0, 0, 9, 'a'}, {0, 1, 'z'}} {
		if _, _, err := parseTuple(bad, nil); err == nil {
			t.Errorf("parseTuple(%v) succeeded", bad)
		}
	}
}

func TestAcksConfirmOnlyWholeAckedTransactions(t *testing.T) {
	pos := func(lsn pglogrepl.LSN, seq uint32) record.Position {
		p := make(record.Position, streamPosLen)
		putStreamPos(p, lsn, seq)
		return p
	}
	var a acks
	a.reset(100, nil)
	a.setEmitted(pos(200, 1))
	a.committed(pos(200, 1), 201) // txn 1: two records
	a.setEmitted(pos(300, 0))
	a.committed(pos(300, 0), 301) // txn 2: one record
	a.setEmitted(streamMark(320))
	a.committed(streamMark(320), 320) // txn 3: no records, a mark at its end
	if a.idle(400) {
		t.Fatal("idle with unacked records")
	}
	if a.ack(pos(200, 0)) || a.confirmed() != 100 {
		t.Fatalf("half a transaction acked moved confirm to %v", a.confirmed())
	}
	if !a.ack(pos(200, 1)) || a.confirmed() != 201 {
		t.Fatalf("confirm = %v, want 201", a.confirmed())
	}
	if !a.ack(pos(300, 0)) || a.confirmed() != 301 {
		t.Fatalf("confirm = %v, want 301 (the mark after it is not acked)", a.confirmed())
	}
	if !a.ack(streamMark(320)) || a.confirmed() != 320 {
		t.Fatalf("confirm = %v, want 320 (the acked mark)", a.confirmed())
	}
	// Idle: the slot may follow the server, but only through a committed mark.
	if !a.idle(400) || a.confirmed() != 320 {
		t.Fatalf("idle(400) refused or confirmed %v before its mark was acked", a.confirmed())
	}
	a.setEmitted(streamMark(400))
	a.committed(streamMark(400), 400)
	if a.idle(500) {
		t.Fatal("idle again while a mark waits for its ack")
	}
	if !a.ack(streamMark(400)) || a.confirmed() != 400 {
		t.Fatalf("idle confirm = %v, want 400", a.confirmed())
	}
	if a.idle(350) || a.confirmed() != 400 {
		t.Fatal("confirm went backwards")
	}
	// A restart at an acked position: a resent transaction at or before it is
	// confirmable at once.
	var b acks
	b.reset(100, pos(200, 1))
	b.committed(pos(200, 1), 201)
	if b.confirmed() != 201 {
		t.Fatalf("resent transaction not confirmed: %v", b.confirmed())
	}
	// A restart at a mark the slot did not confirm yet: no mark before it.
	var c acks
	c.reset(100, streamMark(500))
	if c.idle(300) {
		t.Fatal("idle mark at 300 after a restart at the mark 500")
	}
	if !c.idle(600) {
		t.Fatal("no idle mark at 600 after a restart at the mark 500")
	}
}

func TestMarksSortBetweenTransactionsAndCoverTheSlot(t *testing.T) {
	rec := func(lsn pglogrepl.LSN, seq uint32) record.Position {
		p := make(record.Position, streamPosLen)
		putStreamPos(p, lsn, seq)
		return p
	}
	m := streamMark(1000)
	if rec(999, 1<<31).Compare(m) >= 0 || m.Compare(rec(1000, 0)) >= 0 {
		t.Fatal("a mark must sort after transactions committing before it and before those committing at it")
	}
	if l, ok := coveredLSN(m); !ok || l != 1000 {
		t.Fatalf("coveredLSN(mark 1000) = %v %v", l, ok)
	}
	if l, ok := coveredLSN(rec(700, 3)); !ok || l != 701 {
		t.Fatalf("coveredLSN(record at 700) = %v %v, want 701", l, ok)
	}
	snap := make(record.Position, snapshotPosLen)
	putSnapshotPos(snap, 1, 0, 0, 1)
	if _, ok := coveredLSN(snap); ok {
		t.Fatal("a snapshot position covers no stream LSN")
	}
	if got := describePosition(m, nil); got != "lsn 0/3E8 (everything before delivered)" {
		t.Errorf("describePosition(mark) = %q", got)
	}
}
