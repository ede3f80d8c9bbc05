package pybridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A frame is one message between the server and a worker:
//
//	magic "FLW1" | kind u32 | header length u32 | reserved u32 | body length u64 | header | body
//
// Integers are little-endian. The header is JSON; the body, when present,
// is an Arrow IPC stream. The Python side is fletch/_protocol.py.
type frame struct {
	kind   frameKind
	header []byte
	body   []byte
}

type frameKind uint32

// Frame kinds. The protocol version changes whenever these or their
// headers change incompatibly.
const (
	kindHello  frameKind = 1 // worker → server, first: {"protocol", "pid", "python", "pyarrow"}
	kindLoad   frameKind = 2 // server → worker: {"paths", "modules": [{"name", "path"}]}
	kindLoaded frameKind = 3 // worker → server: {"functions": [...], "errors": [...]}
	kindCall   frameKind = 4 // server → worker: {"fn"}, body: the input batch
	kindResult frameKind = 5 // worker → server: {}, body: the output batch
	kindError  frameKind = 6 // worker → server: {"function", "row", "type", "message", "traceback"}
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
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

const (
	frameMagic      = "FLW1"
	framePrefixLen  = 24
	maxHeaderLen    = 16 << 20 // load replies list every function; 16 MiB is generous
	protocolVersion = 1
)

// ErrProtocol is wrapped by every error about malformed frames.
var ErrProtocol = errors.New("worker protocol violation")

// writeFrame writes f to w as one prefix and up to two payload writes.
func writeFrame(w io.Writer, f frame) error {
	var prefix [framePrefixLen]byte
	copy(prefix[:4], frameMagic)
	binary.LittleEndian.PutUint32(prefix[4:], uint32(f.kind))
	binary.LittleEndian.PutUint32(prefix[8:], uint32(len(f.header)))
	binary.LittleEndian.PutUint64(prefix[16:], uint64(len(f.body)))
	if _, err := w.Write(append(prefix[:], f.header...)); err != nil {
		return err
	}
	if len(f.body) > 0 {
		if _, err := w.Write(f.body); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one frame whose body is at most maxBody bytes. A clean
// end of input before a frame starts is io.EOF.
func readFrame(r io.Reader, maxBody int64) (frame, error) {
	var prefix [framePrefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: stream ends inside a frame prefix", ErrProtocol)
		}
		return frame{}, err
	}
	if string(prefix[:4]) != frameMagic {
		return frame{}, fmt.Errorf("%w: bad frame magic %q", ErrProtocol, prefix[:4])
	}
	f := frame{kind: frameKind(binary.LittleEndian.Uint32(prefix[4:]))}
	headerLen := binary.LittleEndian.Uint32(prefix[8:])
	bodyLen := binary.LittleEndian.Uint64(prefix[16:])
	switch {
	case headerLen > maxHeaderLen:
		return frame{}, fmt.Errorf("%w: %s frame header of %d bytes exceeds %d", ErrProtocol, f.kind, headerLen, maxHeaderLen)
	case bodyLen > uint64(maxBody):
		return frame{}, fmt.Errorf("%w: %s frame body of %d bytes exceeds %d", ErrProtocol, f.kind, bodyLen, maxBody)
	}
	f.header = make([]byte, headerLen)
	if _, err := io.ReadFull(r, f.header); err != nil {
		return frame{}, fmt.Errorf("%w: stream ends inside a %s frame header: %w", ErrProtocol, f.kind, err)
	}
	if bodyLen > 0 {
		f.body = make([]byte, bodyLen)
		if _, err := io.ReadFull(r, f.body); err != nil {
			return frame{}, fmt.Errorf("%w: stream ends inside a %s frame body: %w", ErrProtocol, f.kind, err)
		}
	}
	return f, nil
}
