package offsets

import (
	"context"
	"testing"

	"github.com/connectd/connectd/record"
)

func TestStateSurvivesReopenAndStaysApartFromOffsets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.State("a").Load(ctx, "schema"); err != nil || got != nil {
		t.Fatalf("empty store: %q, %v", got, err)
	}
	if err := f.State("a").Save(ctx, "schema", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := f.State("a.b").Save(ctx, "schema", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := f.State("a").Save(ctx, "b.schema", []byte("three")); err != nil {
		t.Fatal(err)
	}
	g, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ conn, key, want string }{{"a", "schema", "one"}, {"a.b", "schema", "two"}, {"a", "b.schema", "three"}} {
		got, err := g.State(c.conn).Load(ctx, c.key)
		if err != nil || string(got) != c.want {
			t.Errorf("%s/%s = %q, %v; want %q", c.conn, c.key, got, err, c.want)
		}
	}
	if names, err := g.List(ctx); err != nil || len(names) != 0 {
		t.Errorf("List sees state files as offsets: %v, %v", names, err)
	}
}

func TestResetForgetsTheSourceStateToo(t *testing.T) {
	ctx := context.Background()
	f, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"orders", "orders2"} {
		if err := f.Commit(ctx, name, record.Position{1}); err != nil {
			t.Fatal(err)
		}
		if err := f.State(name).Save(ctx, "snapshot", []byte("progress")); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Reset(ctx, "orders", nil); err != nil {
		t.Fatal(err)
	}
	if data, err := f.State("orders").Load(ctx, "snapshot"); err != nil || data != nil {
		t.Errorf("state after reset = %q, %v; want none", data, err)
	}
	if data, err := f.State("orders2").Load(ctx, "snapshot"); err != nil || string(data) != "progress" {
		t.Errorf("another connector's state = %q, %v; want it kept", data, err)
	}
	if pos, err := f.Load(ctx, "orders2"); err != nil || pos == nil {
		t.Errorf("another connector's position = %v, %v; want it kept", pos, err)
	}
}
