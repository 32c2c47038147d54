package postgres

import "time"

// coalesceWait is how long the stream's reader lets the socket fill after a read
// that emptied it: the most it delays a change, and the least time between two of
// its wake-ups while it keeps up with the server.
const coalesceWait = 4 * time.Millisecond
