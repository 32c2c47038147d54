package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLinkHeaderFollowsRelNextAmongOtherRelsAndRelativeLinks(t *testing.T) {
	var srv string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "":
			// Several link-values, a comma inside a URL and inside a quoted title,
			// next among other relation types, in mixed case.
			w.Header().Set("Link", `<`+srv+`/items?page=1>; rel="first", <`+srv+`/items?page=9&ids=1,2>; rel="last"; title="a, b", <`+srv+`/items?page=2>; rel="Next prefetch"`)
			writeJSON(w, 200, jsonRecords(1, 2))
		case "2":
			// A relative link, in a second Link field with an unquoted rel.
			w.Header().Add("Link", `</items?page=1>; rel=prev`)
			w.Header().Add("Link", `</items?page=3>; rel=next`)
			writeJSON(w, 200, jsonRecords(3))
		case "3":
			w.Header().Set("Link", `</items?page=2>; rel="prev"`)
			writeJSON(w, 200, jsonRecords(4))
		default:
			t.Errorf("unexpected request %s", r.URL)
		}
	})
	srv = s.URL
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Pagination: Pagination{Type: "link_header"}}, ClientOptions{})
	pages, err := allPages(t, c, Vars{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(pages); got != "1,2,3,4" {
		t.Errorf("records %s, want 1,2,3,4", got)
	}
	if len(pages) != 3 || pages[2].Number != 3 || !strings.HasSuffix(pages[2].URL, "/items?page=3") {
		t.Errorf("pages %+v", pages)
	}
	if st := c.Stats(); st != (Stats{Requests: 3, Pages: 3, Records: 4}) {
		t.Errorf("stats %+v", st)
	}
}

func TestNextURLFromTheBodyRelativeOrAbsoluteEndsAtNull(t *testing.T) {
	var srv string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("after") {
		case "":
			writeJSON(w, 200, `{"data":`+jsonRecords(1)+`,"links":{"next":"?after=1"}}`)
		case "1":
			writeJSON(w, 200, `{"data":`+jsonRecords(2)+`,"links":{"next":"`+srv+`/v1/items?after=2"}}`)
		case "2":
			writeJSON(w, 200, `{"data":`+jsonRecords(3)+`,"links":{"next":null}}`)
		}
	})
	srv = s.URL
	c, _ := newTestClient(t, s.URL+"/v1", nil, &Request{URL: "items", Records: "/data",
		Pagination: Pagination{Type: "next_url", NextURL: "$.links.next"}}, ClientOptions{})
	pages, err := allPages(t, c, Vars{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(pages); got != "1,2,3" {
		t.Errorf("records %s", got)
	}
	if !strings.HasSuffix(pages[1].URL, "/v1/items?after=1") {
		t.Errorf("a relative next URL resolves against the request's URL: %s", pages[1].URL)
	}
}

// pagedServer serves the records 1..total, page by page or by offset, and counts
// requests.
func pagedServer(t *testing.T, total, apiMax int, requests *atomic.Int32) *http.HandlerFunc {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		q := r.URL.Query()
		size, _ := strconv.Atoi(q.Get("per_page"))
		if size == 0 || size > apiMax {
			size = apiMax
		}
		first := 0
		if p := q.Get("page"); p != "" {
			n, _ := strconv.Atoi(p)
			first = (n - 1) * size
		}
		if o := q.Get("offset"); o != "" {
			first, _ = strconv.Atoi(o)
		}
		var recs []int
		for i := first + 1; i <= min(first+size, total); i++ {
			recs = append(recs, i)
		}
		writeJSON(w, 200, jsonRecords(recs...))
	})
	return &h
}

func TestPageAndOffsetPaginationEndAtAShortOrEmptyPage(t *testing.T) {
	cases := []struct {
		name     string
		pg       Pagination
		total    int
		apiMax   int
		requests int32
		lastLen  int
	}{
		{"page, short last page", Pagination{Type: "page", Size: 2, SizeParam: "per_page"}, 5, 100, 3, 1},
		{"page, full last page needs an empty one", Pagination{Type: "page", Size: 2, SizeParam: "per_page"}, 4, 100, 3, 0},
		{"page without size ends at an empty page", Pagination{Type: "page"}, 5, 2, 4, 0},
		{"offset, short last page", Pagination{Type: "offset", Size: 2, SizeParam: "per_page"}, 5, 100, 3, 1},
		{"offset without size advances by what came", Pagination{Type: "offset"}, 5, 2, 4, 0},
		{"no records at all", Pagination{Type: "page", Size: 2, SizeParam: "per_page"}, 0, 100, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			s := server(t, *pagedServer(t, tc.total, tc.apiMax, &n))
			c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Pagination: tc.pg}, ClientOptions{})
			pages, err := allPages(t, c, Vars{})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := 1; i <= tc.total; i++ {
				want = append(want, strconv.Itoa(i))
			}
			if got := ids(pages); got != strings.Join(want, ",") {
				t.Errorf("records %q, want %q", got, strings.Join(want, ","))
			}
			if n.Load() != tc.requests {
				t.Errorf("%d requests, want %d", n.Load(), tc.requests)
			}
			if l := len(pages[len(pages)-1].Records); l != tc.lastLen {
				t.Errorf("last page has %d records, want %d", l, tc.lastLen)
			}
		})
	}
}

func TestZeroBasedPagesStartAtZero(t *testing.T) {
	var got []string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Query().Get("p"))
		if r.URL.Query().Get("p") == "0" {
			writeJSON(w, 200, jsonRecords(1))
			return
		}
		writeJSON(w, 200, `[]`)
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Pagination: Pagination{Type: "page", Param: "p", ZeroBased: true}}, ClientOptions{})
	if _, err := allPages(t, c, Vars{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"0", "1"}) {
		t.Errorf("pages asked %v", got)
	}
}

func TestTokenPaginationEndsWhenTheTokenIsAbsentEmptyOrNull(t *testing.T) {
	for _, end := range []string{`{}`, `{"next":""}`, `{"next":null}`} {
		t.Run(end, func(t *testing.T) {
			var cursors []string
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				cur := r.URL.Query().Get("cursor")
				cursors = append(cursors, cur)
				switch cur {
				case "":
					writeJSON(w, 200, `{"items":`+jsonRecords(1)+`,"meta":{"next":"abc"}}`)
				case "abc":
					writeJSON(w, 200, `{"items":`+jsonRecords(2)+`,"meta":{"next":7}}`)
				case "7":
					writeJSON(w, 200, `{"items":`+jsonRecords(3)+`,"meta":`+end+`}`)
				}
			})
			c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Records: "/items",
				Pagination: Pagination{Type: "token", Token: "/meta/next"}}, ClientOptions{})
			pages, err := allPages(t, c, Vars{})
			if err != nil {
				t.Fatal(err)
			}
			if ids(pages) != "1,2,3" || !reflect.DeepEqual(cursors, []string{"", "abc", "7"}) {
				t.Errorf("records %s, cursors sent %q", ids(pages), cursors)
			}
		})
	}
}

func TestTokenPlacedByTheBodyTemplateIsNotAlsoAQueryParameter(t *testing.T) {
	var bodies []string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.RawQuery != "" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %s", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if len(bodies) == 1 {
			writeJSON(w, 200, `{"items":[],"next":"t\"2"}`)
			return
		}
		writeJSON(w, 200, `{"items":[]}`)
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/search", Method: "POST", Records: "/items",
		Body:       `{"since":"{{ cursor }}","page_token":"{{ next_page_token }}"}`,
		Pagination: Pagination{Type: "token", Token: "/next"}}, ClientOptions{})
	if _, err := allPages(t, c, Vars{Cursor: "2024-01-01"}); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"since":"2024-01-01","page_token":""}`, `{"since":"2024-01-01","page_token":"t\"2"}`}
	if !reflect.DeepEqual(bodies, want) {
		t.Errorf("bodies %q, want %q", bodies, want)
	}
}

func TestPagingInACircleIsAnError(t *testing.T) {
	cases := []struct {
		name string
		pg   Pagination
		h    http.HandlerFunc
		want string
	}{
		{"link header back to page 1", Pagination{Type: "link_header"}, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("page") == "2" {
				w.Header().Set("Link", `</items>; rel="next"`)
			} else {
				w.Header().Set("Link", `</items?page=2>; rel="next"`)
			}
			writeJSON(w, 200, jsonRecords(1))
		}, "was already fetched"},
		{"next url repeating itself", Pagination{Type: "next_url", NextURL: "/next"}, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"records":[],"next":"/items?page=2"}`)
		}, "was already fetched"},
		{"the same token twice", Pagination{Type: "token", Token: "/next"}, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"records":[],"next":"same"}`)
		}, `token "same" was already used`},
		{"a page parameter the API ignores", Pagination{Type: "page"}, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"records":`+jsonRecords(1, 2)+`}`)
		}, `does the API take the "page" parameter`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t, tc.h)
			records := "/records"
			if tc.pg.Type == "link_header" {
				records = ""
			}
			c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Records: records, Pagination: tc.pg}, ClientOptions{})
			_, err := allPages(t, c, Vars{})
			if err == nil {
				t.Fatal("no error")
			}
			mustContain(t, err.Error(), tc.want, `"orders"`)
		})
	}
}

func TestNextAfterAFailedPageAsksForItAgain(t *testing.T) {
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeJSON(w, 400, `{"error":"try later"}`)
			return
		}
		writeJSON(w, 200, jsonRecords(1))
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items"}, ClientOptions{})
	p := c.Pages(context.Background(), Vars{})
	if _, err := p.Next(context.Background()); err == nil {
		t.Fatal("the 400 is not an error")
	}
	pg, err := p.Next(context.Background())
	if err != nil || len(pg.Records) != 1 {
		t.Fatalf("%v %v", pg, err)
	}
	if _, err := p.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("want io.EOF, got %v", err)
	}
}

func TestParseLinkHeader(t *testing.T) {
	cases := []struct {
		in   string
		want []webLink
		err  bool
	}{
		{``, nil, false},
		{`<https://a/?p=2>; rel="next"`, []webLink{{"https://a/?p=2", []string{"next"}}}, false},
		{`<https://a/?ids=1,2>;rel=next,<https://a/?p=1>; rel="prev first"`,
			[]webLink{{"https://a/?ids=1,2", []string{"next"}}, {"https://a/?p=1", []string{"prev", "first"}}}, false},
		{`<x>; title="a; b, \"c\""; rel="next"`, []webLink{{"x", []string{"next"}}}, false},
		{`<x>; rel="last"; rel="next"`, []webLink{{"x", []string{"last"}}}, false}, // only the first rel counts
		{`<x>; REL = "NEXT" ;`, []webLink{{"x", []string{"next"}}}, false},
		{`<x>; anchor="#a"; hreflang=en, , <y>`, []webLink{{"x", nil}, {"y", nil}}, false},
		{`https://a/; rel=next`, nil, true},
		{`<https://a/; rel=next`, nil, true},
		{`<x> rel=next`, nil, true},
		{`<x>; rel="next`, nil, true},
		{`<x>; =next`, nil, true},
	}
	for _, tc := range cases {
		got, err := parseLinkHeader(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestNoContentIsTheLastPage(t *testing.T) {
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Records: "/data", Pagination: Pagination{Type: "page"}}, ClientOptions{})
	pages, err := allPages(t, c, Vars{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || len(pages[0].Records) != 0 || pages[0].Status != 204 || n.Load() != 1 {
		t.Errorf("pages %+v after %d requests", pages, n.Load())
	}
}
