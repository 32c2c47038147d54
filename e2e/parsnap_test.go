package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestParallelSnapshotKilledMidwayRereadsOnlyChunksNotCommitted kills `connectd run`
// (SIGKILL, the S3 server frozen so that the kill lands between two flushes) while
// two readers snapshot a table split into ten key ranges, then runs `connectd sync`
// with debug logs and checks from its "snapshot chunk read" lines that it read only
// the chunk the committed position is in (the rows after its key) and the chunks
// after it, none of the chunks before, and that the lake, read with DuckDB, holds every row once with no _pos
// twice.
func TestParallelSnapshotKilledMidwayRereadsOnlyChunksNotCommitted(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_parsnap")
	const total, chunk = 60000, 6000
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE public.pbig (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO public.pbig SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, %d) g;
ANALYZE public.pbig`, total))
	p := newPipe(t, "parsnap_killed", dsn, true, "public.pbig")
	p.extra = fmt.Sprintf("      snapshot_chunk: %d\n      snapshot_parallel: 2\n", chunk)
	p.flush = "{rows: 3000, bytes: 16MiB, interval: 1s}"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)

	// Five flushes of about 4,000 rows: the kill lands a few chunks in.
	killAfterObjects(t, p, 5)
	atKill := lakeCount(t, db, p.tableDir(t, "public", "pbig"))
	if atKill == 0 || atKill >= total {
		t.Fatalf("%d of %d rows were in the lake at the kill; the test proves nothing", atKill, total)
	}

	// The committed position: the chunk, its row and the key the resume continues after.
	list := connectd(t, 30*time.Second, "offsets", "list", "-c", p.config)
	m := regexp.MustCompile(`chunk (\d+) row (\d+) key \["(\d+)"\]`).FindStringSubmatch(list.stdout)
	if list.code != 0 || m == nil {
		t.Fatalf("offsets list after the kill: want a snapshot position with a key, got %s", list)
	}
	committedChunk, _ := strconv.Atoi(m[1])
	committedKey, _ := strconv.Atoi(m[3])
	t.Logf("killed with %d of %d rows in the lake, committed at chunk %d key %d", atKill, total, committedChunk, committedKey)
	// Ten even ranges of ids 1..60000: chunk c holds c*6000+1 .. (c+1)*6000.
	if committedKey <= committedChunk*chunk || committedKey > (committedChunk+1)*chunk {
		t.Fatalf("committed key %d is not in chunk %d's range", committedKey, committedChunk)
	}
	if committedChunk == 0 {
		t.Fatalf("committed inside the first chunk: no chunk is left out of the resumed read, the test proves nothing")
	}

	res := connectd(t, 90*time.Second, "sync", "-c", p.config, "--log-level", "debug")
	if res.code != 0 {
		t.Fatalf("connectd sync after the kill: %s", res)
	}
	reads := map[int]int{} // chunk -> rows read
	sc := bufio.NewScanner(strings.NewReader(res.stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg   string `json:"msg"`
			Table string `json:"table"`
			Chunk *int   `json:"chunk"`
			Rows  int    `json:"rows"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "snapshot chunk read" || l.Table != "public.pbig" || l.Chunk == nil {
			continue
		}
		if _, dup := reads[*l.Chunk]; dup {
			t.Errorf("chunk %d read twice by the resumed run", *l.Chunk)
		}
		reads[*l.Chunk] = l.Rows
	}
	var got, want []int
	for c := range reads {
		got = append(got, c)
	}
	sort.Ints(got)
	for c := committedChunk; c < total/chunk; c++ {
		want = append(want, c)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the resumed run read chunks %v, want %v (the committed one and those after it)\n%s", got, want, tail(res.stderr, 40))
	}
	if n := reads[committedChunk]; n != (committedChunk+1)*chunk-committedKey {
		t.Errorf("the resumed run read %d rows of chunk %d, want the %d after key %d", n, committedChunk, (committedChunk+1)*chunk-committedKey, committedKey)
	}

	rows := readTable(t, db, p.tableDir(t, "public", "pbig"), "CAST(id AS VARCHAR) AS id", "pad")
	checkPositions(t, rows)
	perID := map[string]int{}
	twice := 0
	for _, r := range rows {
		if r.val("_op") != "r" {
			t.Errorf("unexpected %s record: %s", r.val("_op"), r.describe())
		}
		if perID[r.val("id")]++; perID[r.val("id")] == 2 {
			twice++
		}
	}
	if len(rows) != total || twice > 0 {
		t.Errorf("lake has %d snapshot records for %d rows, %d rows more than once; want each row once", len(rows), total, twice)
	}
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, pad FROM public.pbig"), "id", "pad")
}
