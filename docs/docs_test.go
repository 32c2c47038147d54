// Package docs holds the repository's documents; its test keeps the pointers into
// them honest.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checked are the files whose text may cite a document.
var checked = map[string]bool{".go": true, ".proto": true, ".sh": true, ".md": true, ".yaml": true, ".yml": true, "Makefile": true}

// Citations a reader of the repository cannot open: the user contract's section
// numbers and issue numbers (this file, which spells them out, is not checked).
var unopenable = regexp.MustCompile(`\bSPEC(\.md|\s+sections?\s+[0-9]|\s+[0-9]|\s*§)|(?i:\bspec\s*§)|(?i:\bissues?\s*#?[0-9]+\b)`)

// A pointer to a heading: docs/operations.md, "Running two instances safely" (a
// comment may wrap between the two parts).
var quotedPointer = regexp.MustCompile(`docs/([a-z]+\.md),\s*(?://\s*|#\s*)?"([^"\n]+)"`)

// A link to an anchor: docs/design.md#positions in code, (../docs/design.md#envelope)
// or (design.md#exactly-once) in Markdown.
var anchorPointer = regexp.MustCompile(`(?:\]\(|\bdocs/)([A-Za-z0-9_./-]*\.md)#([a-z0-9_-]+)`)

func TestNoCitationsOfTheContractOrIssueNumbers(t *testing.T) {
	for path, text := range repoFiles(t) {
		for i, line := range strings.Split(text, "\n") {
			if m := unopenable.FindString(line); m != "" {
				t.Errorf("%s:%d: %q cites what the repository does not hold; point to a section of a document in docs/ or a README instead", path, i+1, m)
			}
		}
	}
}

func TestPointersIntoDocsNameExistingSections(t *testing.T) {
	headings := map[string]map[string]bool{} // docs file -> heading text and anchor
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".md" {
			continue
		}
		b, err := os.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		hs := map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			if h, ok := strings.CutPrefix(line, "#"); ok {
				h = strings.TrimSpace(strings.TrimLeft(h, "#"))
				hs[h] = true
				hs["#"+anchor(h)] = true
			}
		}
		headings[e.Name()] = hs
	}
	if len(headings) == 0 {
		t.Fatal("no documents found in docs/")
	}
	files := repoFiles(t)
	checkedPointers := 0
	for path, text := range files {
		for _, m := range quotedPointer.FindAllStringSubmatch(text, -1) {
			hs, ok := headings[m[1]]
			if !ok {
				t.Errorf("%s: points to docs/%s, which does not exist", path, m[1])
				continue
			}
			checkedPointers++
			if !hs[m[2]] {
				t.Errorf("%s: points to docs/%s, %q: no such heading", path, m[1], m[2])
			}
		}
		for _, m := range anchorPointer.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if !strings.HasPrefix(m[0], "docs/") {
				target = filepath.Join(filepath.Dir(path), target) // a Markdown link, relative to its file
			} else {
				target = filepath.Join("docs", target)
			}
			dir, name := filepath.Split(target)
			if filepath.Clean(dir) != "docs" {
				continue // a README elsewhere: not checked here
			}
			hs, ok := headings[name]
			if !ok {
				t.Errorf("%s: links to %s, which does not exist", path, target)
				continue
			}
			checkedPointers++
			if !hs["#"+m[2]] {
				t.Errorf("%s: links to %s#%s: no heading has that anchor", path, target, m[2])
			}
		}
	}
	if checkedPointers == 0 {
		t.Error("found no pointer into docs/ at all: the patterns no longer match how the code cites documents")
	}
}

// anchor is the fragment GitHub gives a heading: lower case, punctuation dropped,
// spaces as hyphens.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// repoFiles reads every checked file of the repository, keyed by its path from the
// repository's root.
func repoFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") && name != ".ci" || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !checked[filepath.Ext(path)] && !checked[d.Name()] || rel == filepath.Join("docs", "docs_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d files to check from %s: is the test running in docs/?", len(files), "..")
	}
	return files
}
