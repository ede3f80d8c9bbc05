package pybridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A frame is one message between the server and a worker:
//
//	magic "FLW2" | kind u16 | flags u16 | id u64 | fn u32 | header length u32 | body length u64 | body offset u64 | header | inline body
//
// Integers are little-endian; the prefix is 40 bytes. Control frames
// (hello, load, loaded, error, and a call's options) carry a JSON header;
// the hot path carries none. A body is inline after the header, or, with
// flagShm, lies in the shared memory region at the body offset: the
// request half for frames to the worker, the reply half for frames from
// it. Bodies of calls are one encapsulated Arrow IPC record batch message
// whose schema both sides know; bodies of results are zero or more such
// messages. Every request carries an id, which its reply repeats. The
// Python side is fletch/_protocol.py.
type frame struct {
	kind   frameKind
	flags  uint16
	id     uint64
	fn     uint32 // a call's function: its index in the loaded reply
	header []byte
	body   []byte // inline
	// shmOff and shmLen locate a flagShm body.
	shmOff, shmLen uint64
}

type frameKind uint16

// Frame kinds. The protocol version changes whenever these or their
// headers change incompatibly.
const (
	kindHello   frameKind = 1 // worker → server, first, id 0: {"protocol", "pid", "python", "pyarrow", "shm"}
	kindLoad    frameKind = 2 // server → worker: {"paths", "modules": [{"name", "path"}]}
	kindLoaded  frameKind = 3 // worker → server: {"functions": [...], "errors": [...]}
	kindCall    frameKind = 4 // server → worker: fn, op in the flags, options as the header, the input batch as the body
	kindResult  frameKind = 5 // worker → server: the output batches as the body
	kindError   frameKind = 6 // worker → server: {"function", "row", "type", "message", "traceback"}
	kindRelease frameKind = 7 // either way, id 0: the body is u64 ids whose shared memory the sender is done with
)

func (k frameKind) String() string {
	switch k {
	case kindHello:
		return "hello"
	case kindLoad:
		return "load"
	case kindLoaded:
		return "loaded"
	case kindCall:
		return "call"
	case kindResult:
		return "result"
	case kindError:
		return "error"
	case kindRelease:
		return "release"
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// Frame flags.
const (
	// flagShm: the body lies in shared memory.
	flagShm uint16 = 1 << 0
	// flagInputFree (result, error): the worker holds nothing of the
	// request's shared-memory input any more, so it may be reused.
	flagInputFree uint16 = 1 << 1
	// flagErrorColumn (result): the batches carry the error column.
	flagErrorColumn uint16 = 1 << 2
	// flagSeveral (call): the body holds several record batch messages,
	// to be evaluated as one batch.
	flagSeveral uint16 = 1 << 3
	// A call's operation is in bits 8 and 9.
	opShift = 8
	opMask  = 3 << opShift
)

// Op is what a call asks of a UDF.
type Op uint16

const (
	// OpBatch evaluates the input batch.
	OpBatch Op = iota
	// OpOpen starts a stateful exchange; its input is the exchange's input
	// schema, as an encapsulated IPC schema message.
	OpOpen
	// OpFinish ends a stateful exchange and returns what it emits at the end.
	OpFinish
	// OpClose drops an unfinished stateful exchange's state.
	OpClose
)

func (o Op) String() string {
	switch o {
	case OpBatch:
		return "batch"
	case OpOpen:
		return "open"
	case OpFinish:
		return "finish"
	case OpClose:
		return "close"
	}
	return fmt.Sprintf("op(%d)", uint16(o))
}

const (
	frameMagic      = "FLW2"
	framePrefixLen  = 40
	maxHeaderLen    = 16 << 20 // load replies list every function; 16 MiB is generous
	protocolVersion = 2
)

// ErrProtocol is wrapped by every error about malformed frames.
var ErrProtocol = errors.New("worker protocol violation")

func (f *frame) putPrefix(prefix []byte) {
	copy(prefix[:4], frameMagic)
	binary.LittleEndian.PutUint16(prefix[4:], uint16(f.kind))
	binary.LittleEndian.PutUint16(prefix[6:], f.flags)
	binary.LittleEndian.PutUint64(prefix[8:], f.id)
	binary.LittleEndian.PutUint32(prefix[16:], f.fn)
	binary.LittleEndian.PutUint32(prefix[20:], uint32(len(f.header)))
	bodyLen, off := uint64(len(f.body)), uint64(0)
	if f.flags&flagShm != 0 {
		bodyLen, off = f.shmLen, f.shmOff
	}
	binary.LittleEndian.PutUint64(prefix[24:], bodyLen)
	binary.LittleEndian.PutUint64(prefix[32:], off)
}

// smallFrame is the size below which a frame goes out in one write.
const smallFrame = 64 << 10

// writeFrame writes f to w: one write for small frames, two for large
// inline bodies (which are not copied).
func writeFrame(w io.Writer, f frame) error {
	n := framePrefixLen + len(f.header) + len(f.body)
	if n <= smallFrame {
		buf := make([]byte, framePrefixLen, n)
		f.putPrefix(buf)
		buf = append(append(buf, f.header...), f.body...)
		_, err := w.Write(buf)
		return err
	}
	buf := make([]byte, framePrefixLen, framePrefixLen+len(f.header))
	f.putPrefix(buf)
	if _, err := w.Write(append(buf, f.header...)); err != nil {
		return err
	}
	if len(f.body) > 0 {
		if _, err := w.Write(f.body); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one frame whose inline body is at most maxBody bytes.
// A clean end of input before a frame starts is io.EOF. A shared-memory
// body is only located here; the caller checks it against its region.
func readFrame(r io.Reader, maxBody int64) (frame, error) {
	var prefix [framePrefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: stream ends inside a frame prefix: %w", ErrProtocol, err)
		}
		return frame{}, err
	}
	if string(prefix[:4]) != frameMagic {
		return frame{}, fmt.Errorf("%w: bad frame magic %q", ErrProtocol, prefix[:4])
	}
	f := frame{
		kind:  frameKind(binary.LittleEndian.Uint16(prefix[4:])),
		flags: binary.LittleEndian.Uint16(prefix[6:]),
		id:    binary.LittleEndian.Uint64(prefix[8:]),
		fn:    binary.LittleEndian.Uint32(prefix[16:]),
	}
	headerLen := binary.LittleEndian.Uint32(prefix[20:])
	bodyLen := binary.LittleEndian.Uint64(prefix[24:])
	off := binary.LittleEndian.Uint64(prefix[32:])
	shm := f.flags&flagShm != 0
	switch {
	case headerLen > maxHeaderLen:
		return frame{}, fmt.Errorf("%w: %s frame header of %d bytes exceeds %d", ErrProtocol, f.kind, headerLen, maxHeaderLen)
	case !shm && bodyLen > uint64(maxBody):
		return frame{}, fmt.Errorf("%w: %s frame body of %d bytes exceeds %d", ErrProtocol, f.kind, bodyLen, maxBody)
	case !shm && off != 0:
		return frame{}, fmt.Errorf("%w: %s frame has a body offset but no shared-memory body", ErrProtocol, f.kind)
	}
	f.header = make([]byte, headerLen)
	if _, err := io.ReadFull(r, f.header); err != nil {
		return frame{}, fmt.Errorf("%w: stream ends inside a %s frame header: %w", ErrProtocol, f.kind, eof(err))
	}
	if shm {
		f.shmOff, f.shmLen = off, bodyLen
		return f, nil
	}
	if bodyLen > 0 {
		f.body = make([]byte, bodyLen)
		if _, err := io.ReadFull(r, f.body); err != nil {
			return frame{}, fmt.Errorf("%w: stream ends inside a %s frame body: %w", ErrProtocol, f.kind, eof(err))
		}
	}
	return f, nil
}

// eof makes a stream that ended mid-frame an io.ErrUnexpectedEOF, which
// says the writer died rather than misbehaved.
func eof(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (f *frame) op() Op { return Op((f.flags & opMask) >> opShift) }

// releaseBody encodes ids as a release frame's body.
func releaseBody(ids []uint64) []byte {
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.LittleEndian.PutUint64(b[8*i:], id)
	}
	return b
}

// releasedIDs decodes a release frame's body.
func releasedIDs(f frame) ([]uint64, error) {
	if len(f.body)%8 != 0 || f.flags&flagShm != 0 {
		return nil, fmt.Errorf("%w: a release frame's body must be inline u64 ids, got %d bytes", ErrProtocol, len(f.body))
	}
	ids := make([]uint64, len(f.body)/8)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(f.body[8*i:])
	}
	return ids, nil
}
