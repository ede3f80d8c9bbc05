//go:build !linux

package pybridge

import (
	"errors"
	"os"
)

// SharedMemory reports whether this platform maps worker bodies; elsewhere
// every body crosses the pipes.
const SharedMemory = false

func newRegion(reqSize, repSize int) (*region, *os.File, error) {
	return nil, nil, errors.New("shared memory transport is only built for Linux")
}
