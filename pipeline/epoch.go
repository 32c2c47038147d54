package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Reset epochs (docs/design.md, "Reset epochs"). A reset must not let the
// new snapshot sort before what the lake already holds, so the runtime, not the
// source, prefixes every position with the number of resets behind it:
//
//	epoch 0 (never reset): the source's position, unchanged
//	epoch n >= 1:          0xff | n uint32 big-endian | the source's position
//	start of epoch n:      0xff | n                     (what `offsets reset` commits)
//
// Sources keep their own layouts and never see the prefix; the byte 0xff at the start
// of a source position is reserved for it. 0xff sorts after every first byte a
// source may use, and a higher n after a lower one, so each epoch sorts after all
// the epochs before it, and the start marker before every record of its epoch.
const (
	epochByte      = 0xff
	epochPrefixLen = 5
)

// SplitEpoch splits a stored position into its reset epoch and the source's own
// position (nil at the start of an epoch).
func SplitEpoch(p record.Position) (epoch uint32, src record.Position, err error) {
	if len(p) == 0 || p[0] != epochByte {
		return 0, p, nil
	}
	if len(p) < epochPrefixLen {
		return 0, nil, fmt.Errorf("position %s starts with the reset-epoch byte ff but is %d bytes long, not at least %d", p, len(p), epochPrefixLen)
	}
	epoch = binary.BigEndian.Uint32(p[1:epochPrefixLen])
	if epoch == 0 {
		return 0, nil, fmt.Errorf("position %s carries reset epoch 0, which is never written", p)
	}
	if len(p) == epochPrefixLen {
		return epoch, nil, nil
	}
	return epoch, p[epochPrefixLen:], nil
}

// WithEpoch returns src under epoch: src itself for epoch 0, else a new position with
// the prefix.
func WithEpoch(epoch uint32, src record.Position) record.Position {
	if epoch == 0 {
		return src
	}
	p := make(record.Position, epochPrefixLen, epochPrefixLen+len(src))
	putEpoch(p, epoch)
	return append(p, src...)
}

// ResetMarker returns the position `offsets reset` commits in place of stored: the
// start of the next epoch, which the runtime loads as "epoch n+1, no source position".
func ResetMarker(stored record.Position) (record.Position, error) {
	epoch, _, err := SplitEpoch(stored)
	if err != nil {
		return nil, err
	}
	if epoch == math.MaxUint32 {
		return nil, errors.New("the connector has been reset 4294967295 times; no epoch is left")
	}
	return WithEpoch(epoch+1, nil), nil
}

func putEpoch(b []byte, epoch uint32) {
	b[0] = epochByte
	binary.BigEndian.PutUint32(b[1:epochPrefixLen], epoch)
}

// stamp checks that no source position in b uses the reserved byte, then, in a later
// epoch, puts the epoch in front of each (one allocation for the whole batch). The
// runtime owns b once it was emitted, so its records are changed in place.
func stamp(epoch uint32, b []record.Record) error {
	n := 0
	for i := range b {
		if len(b[i].Pos) > 0 && b[i].Pos[0] == epochByte {
			return connector.Permanent(fmt.Errorf("source emitted position %s: a source position must not start with the byte ff, which the runtime reserves for reset epochs (plugins/README.md)", b[i].Pos))
		}
		n += len(b[i].Pos)
	}
	if epoch == 0 {
		return nil
	}
	slab := make([]byte, 0, n+epochPrefixLen*len(b))
	var prefix [epochPrefixLen]byte
	putEpoch(prefix[:], epoch)
	for i := range b {
		at := len(slab)
		slab = append(slab, prefix[:]...)
		slab = append(slab, b[i].Pos...)
		b[i].Pos = record.Position(slab[at:len(slab):len(slab)])
	}
	return nil
}

// sourcePos is the source's part of a position of the running epoch (what Ack gets).
func sourcePos(epoch uint32, p record.Position) record.Position {
	if epoch == 0 {
		return p
	}
	return p[epochPrefixLen:]
}
