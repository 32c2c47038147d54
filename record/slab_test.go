package record

import "testing"

func TestValueSlabRowsStayApart(t *testing.T) {
	s := ValueSlab{Rows: 2}
	var rows [][]Value
	for i := 0; i < 2000; i++ {
		r := s.Take(3)
		if len(r) != 3 || cap(r) != 3 || r[0] != nil {
			t.Fatalf("row %d: len %d cap %d first %v", i, len(r), cap(r), r[0])
		}
		r[0], r[2] = i, i
		rows = append(rows, r)
	}
	rows[0] = append(rows[0], "grown") // must not spill into rows[1]
	for i, r := range rows {
		if r[0] != i || r[2] != i {
			t.Fatalf("row %d = %v: another row wrote into it", i, r)
		}
	}
}
