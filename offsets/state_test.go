package offsets

import (
	"context"
	"testing"
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
