// Command jsonl-source is an example connectd source plugin: it tails a file of JSON
// lines, one object per line, and emits each complete line as an insert. The
// connector itself is in package jsonl.
package main

import (
	"github.com/connectd/connectd/plugins/examples/jsonl-source/jsonl"
	"github.com/connectd/connectd/plugins/sdk"
)

func main() {
	sdk.ServeSource[jsonl.Config](jsonl.Info, &jsonl.Source{})
}
