// Command ndjson-destination is an example connectd destination plugin: it writes
// records as newline-delimited JSON files, one per table and flush. The connector
// itself is in package ndjson.
package main

import (
	"github.com/connectd/connectd/plugins/examples/ndjson-destination/ndjson"
	"github.com/connectd/connectd/plugins/sdk"
)

func main() {
	sdk.ServeDestination[ndjson.Config](ndjson.Info, &ndjson.Destination{})
}
