package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/status"
	"github.com/connectd/connectd/verify"
)

func TestBackgroundVerifyRecordsAndLogsTheReport(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rep := &verify.Report{Connector: "orders", Boundary: "0/16B3748", Tables: []*verify.TableReport{
		{Table: "public.items", SourceRows: 4, DestRows: 4, Examples: []verify.KeyDiff{}},
		{Table: "public.orders", SourceRows: 9, DestRows: 10, Extra: 2, Differing: 1, Examples: []verify.KeyDiff{
			{Kind: "extra", Key: []verify.ColumnValue{{Column: "id", Value: "7"}}},
			{Kind: "differs", Key: []verify.ColumnValue{{Column: "a", Value: "1"}, {Column: "b", Value: "x"}},
				Columns: []verify.ColumnDiff{{Column: "note", Source: "s", Destination: "d"}, {Column: "v", Source: "1", Destination: "2"}}},
			{Kind: "extra", Key: []verify.ColumnValue{{Column: "id", Value: "8"}}},
			{Kind: "extra", Key: []verify.ColumnValue{{Column: "id", Value: "9"}}},
		}},
	}}
	run := verifyRun(at, rep, nil)
	want := []status.VerifyTable{
		{Table: "public.items", Equal: true, SourceRows: 4, DestinationRows: 4},
		{Table: "public.orders", Equal: false, SourceRows: 9, DestinationRows: 10, Extra: 2, Differing: 1},
	}
	if !run.At.Equal(at) || run.Err != nil || len(run.Tables) != 2 || run.Tables[0] != want[0] || run.Tables[1] != want[1] {
		t.Errorf("verifyRun = %+v, want the tables %+v", run, want)
	}

	var buf bytes.Buffer
	logVerify(slog.New(slog.NewTextHandler(&buf, nil)), rep, nil)
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("want one warning, for the table that differs; got %d lines:\n%s", n, out)
	}
	for _, s := range []string{"level=WARN", "table=public.orders", "extra=2", "differing=1", "missing=0",
		`examples="extra id=7; differs a=1,b=x (note,v); extra id=8"`} {
		if !strings.Contains(out, s) {
			t.Errorf("the warning lacks %s:\n%s", s, out)
		}
	}
	if strings.Contains(out, "id=9") {
		t.Errorf("the warning lists more than %d keys:\n%s", verifyExamples, out)
	}

	buf.Reset()
	failed := errors.New("open the source's snapshot: connection refused")
	if run := verifyRun(at, nil, failed); !errors.Is(run.Err, failed) || run.Tables != nil {
		t.Errorf("verifyRun of a failed run = %+v", run)
	}
	logVerify(slog.New(slog.NewTextHandler(&buf, nil)), nil, failed)
	if out := buf.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "connection refused") {
		t.Errorf("a failed run logs %q", out)
	}

	buf.Reset()
	logVerify(slog.New(slog.NewTextHandler(&buf, nil)), &verify.Report{Tables: rep.Tables[:1]}, nil)
	if out := buf.String(); !strings.Contains(out, "level=INFO") || !strings.Contains(out, "equals the source") {
		t.Errorf("an equal run logs %q", out)
	}
}
