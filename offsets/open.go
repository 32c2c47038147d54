package offsets

import (
	"fmt"
	"strings"
)

// Open returns the Store an offsets URL names: "file:///abs/dir" or "file://rel/dir"
// (relative to the working directory). postgres:// and s3:// stores are planned.
func Open(url string) (Store, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("offsets: %q is not a URL: want file:///path/to/dir", url)
	}
	switch strings.ToLower(scheme) {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("offsets: %q names no directory: want file:///path/to/dir", url)
		}
		return NewFile(rest)
	case "postgres", "postgresql", "s3":
		return nil, fmt.Errorf("offsets: %s:// stores are not supported yet: use file:///path/to/dir", scheme)
	default:
		return nil, fmt.Errorf("offsets: unknown store %q: want file:///path/to/dir", scheme+"://")
	}
}
