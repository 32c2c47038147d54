package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pglogrepl"
)

// pgoutput message builders for the window test.
func beginMsg(final uint64, xid uint32) []byte {
	b := []byte{'B'}
	b = binary.BigEndian.AppendUint64(b, final)
	b = binary.BigEndian.AppendUint64(b, 0)
	return binary.BigEndian.AppendUint32(b, xid)
}

func commitMsg(lsn, end uint64) []byte {
	b := []byte{'C', 0}
	b = binary.BigEndian.AppendUint64(b, lsn)
	b = binary.BigEndian.AppendUint64(b, end)
	return binary.BigEndian.AppendUint64(b, 0)
}

func logicalMsgBytes(lsn uint64, prefix string, content []byte) []byte {
	b := []byte{'M', 1}
	b = binary.BigEndian.AppendUint64(b, lsn)
	b = append(append(b, prefix...), 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(content)))
	return append(b, content...)
}

func updateMsg(rel uint32, vals ...string) []byte {
	b := []byte{'U'}
	b = binary.BigEndian.AppendUint32(b, rel)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		b = append(b, 't')
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// TestWindowDropsChunkRowsTheStreamChanged feeds the streamer a low watermark, an
// update of key 2 and a high watermark whose chunk holds keys 1, 2 and 3 (2 with the
// value read before the update): the chunk's row 2 is dropped, 1 and 3 become r
// records after the update, and the table's snapshot moves on and completes.
func TestWindowDropsChunkRowsTheStreamChanged(t *testing.T) {
	ctx := context.Background()
	intCodec, _ := pgvalue.NewCodec(pgvalue.TypeInfo{OID: 23, Name: "integer", Type: 'b', Category: 'N', Typmod: -1})
	textCodec, _ := pgvalue.NewCodec(pgvalue.TypeInfo{OID: 25, Name: "text", Type: 'b', Category: 'S', Typmod: -1})
	sh := &tableShape{
		schema: record.NewSchema("public", "t", []record.Column{
			{Name: "id", SourceType: "integer", Type: intCodec.Type(), Key: true},
			{Name: "v", SourceType: "text", Type: textCodec.Type(), Nullable: true},
		}),
		codecs: []*pgvalue.Codec{intCodec, textCodec},
		known:  []bool{true, true},
	}
	s := &Source{
		log: slog.New(slog.DiscardHandler), status: connector.NopStatus{},
		shapes: map[string]*tableShape{"public.t": sh}, selected: map[string]bool{"public.t": true},
		tables: map[string]table{"public.t": {oid: 7, schema: "public", name: "t"}},
		incr:   &incrState{Known: map[string]uint32{"public.t": 7}, Queue: []incrTable{{ID: "x", Table: "public.t", OID: 7}}},
	}
	var got []record.Record
	st := &streamer{s: s, rels: map[uint32]*relation{7: {name: "public.t", shape: sh, key: []int{0}}},
		windows: map[string]*window{}, orders: map[string][]int{}, roots: map[uint32]string{},
		emit: func(_ context.Context, recs []record.Record) error { got = append(got, recs...); return nil }}
	header := func(kind string) []byte {
		w := watermark{Kind: kind, ID: "x", Table: "public.t", Chunk: 0, Nonce: "n"}
		if kind == "high" {
			w.Limit, w.Columns, w.Order = 10, []string{"id", "v"}, []int{0}
		}
		b, _ := json.Marshal(w)
		return b
	}
	high := append(header("high"), "\n1\ta\n2\told\n3\tc"...)
	for _, m := range [][]byte{
		beginMsg(100, 1), logicalMsgBytes(100, watermarkPrefix, header("low")), commitMsg(100, 110),
		beginMsg(200, 2), updateMsg(7, "2", "new"), commitMsg(200, 210),
		beginMsg(300, 3), logicalMsgBytes(300, watermarkPrefix, high), commitMsg(300, 310),
	} {
		if err := st.message(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.flush(ctx); err != nil {
		t.Fatal(err)
	}
	var data []string
	for _, r := range got {
		if r.Op == record.OpCheckpoint {
			continue
		}
		data = append(data, fmt.Sprint(string(r.Op), " ", r.After[0], " ", r.After[1]))
	}
	want := []string{"u 2 new", "r 1 a", "r 3 c"}
	if len(data) != len(want) {
		t.Fatalf("records %v, want %v", data, want)
	}
	for i := range want {
		if data[i] != want[i] {
			t.Fatalf("records %v, want %v", data, want)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Pos.Compare(got[i-1].Pos) <= 0 {
			t.Fatalf("position %d (%s) not after %s", i, got[i].Pos, got[i-1].Pos)
		}
	}
	if s.incrBusy() {
		t.Fatalf("a 3-row chunk under a limit of 10 ends the table's snapshot; queue %+v", s.incr.Queue)
	}
	if c := s.ack.confirmed(); c > pglogrepl.LSN(100) {
		t.Fatalf("the slot may confirm %s past the low watermark before anything was acked", c)
	}
}
