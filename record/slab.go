package record

// ValueSlab cuts row images from large arrays, so that a source allocates once per
// block of rows instead of once per row. A block is never reused: the rows cut from it
// keep it alive. Each slice's capacity ends with it, so appending to one row cannot
// overwrite the next.
type ValueSlab struct {
	// Rows is how many rows of the size asked for a new block holds (default 256).
	Rows int
	free []Value
}

// Take returns n zeroed values.
func (s *ValueSlab) Take(n int) []Value {
	if len(s.free) < n {
		rows := s.Rows
		if rows <= 0 {
			rows = 256
		}
		s.free = make([]Value, max(n*rows, 1024))
	}
	v := s.free[:n:n]
	s.free = s.free[n:]
	return v
}
