package pybridge

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SharedMemory reports whether this platform maps worker bodies.
const SharedMemory = true

// newRegion creates an anonymous shared file (memfd: nothing on disk, no
// name another process can open) of reqSize+repSize bytes and maps it.
// The returned file is what the worker inherits and maps too.
func newRegion(reqSize, repSize int) (*region, *os.File, error) {
	fd, err := unix.MemfdCreate("fletch-worker", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "fletch-worker-shm")
	size := reqSize + repSize
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("size shared memory: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("map shared memory: %w", err)
	}
	r := &region{
		mem:      mem,
		reqSize:  reqSize,
		requests: newArena(reqSize),
		unmap:    func() error { return unix.Munmap(mem) },
		trim: func(off, n int) {
			// The pages read back as zeros and cost nothing until touched again.
			_ = unix.Madvise(mem[off:off+n], unix.MADV_REMOVE)
		},
	}
	r.refs.Store(1)
	return r, f, nil
}
