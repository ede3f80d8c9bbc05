package pybridge

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []frame{
		{kind: kindHello, header: []byte(`{"protocol":2}`)},
		{kind: kindCall, id: 7, fn: 3, flags: uint16(OpFinish) << opShift, header: []byte(`{"a":1}`), body: bytes.Repeat([]byte{7}, 100_000)},
		{kind: kindResult, id: 7, flags: flagShm | flagInputFree, shmOff: 4096, shmLen: 123},
		{kind: kindRelease, body: releaseBody([]uint64{1, 2, 1 << 60})},
		{kind: kindResult, id: 8},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := writeFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range frames {
		got, err := readFrame(&buf, 1<<20)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.kind != want.kind || got.id != want.id || got.fn != want.fn || got.flags != want.flags ||
			got.shmOff != want.shmOff || got.shmLen != want.shmLen ||
			!bytes.Equal(got.header, want.header) || !bytes.Equal(got.body, want.body) {
			t.Errorf("frame %d = %+v, want %+v", i, got, want)
		}
	}
	if _, err := readFrame(&buf, 1<<20); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
	if op := frames[1].op(); op != OpFinish {
		t.Errorf("op = %s, want finish", op)
	}
	ids, err := releasedIDs(frames[3])
	if err != nil || len(ids) != 3 || ids[2] != 1<<60 {
		t.Errorf("releasedIDs = %v, %v", ids, err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	valid := func(header, body int) []byte {
		var b bytes.Buffer
		_ = writeFrame(&b, frame{kind: kindCall, header: make([]byte, header), body: make([]byte, body)})
		return b.Bytes()
	}
	hugeHeader := valid(0, 0)
	hugeHeader[20], hugeHeader[21], hugeHeader[22], hugeHeader[23] = 0xff, 0xff, 0xff, 0x7f
	offsetWithoutShm := valid(0, 0)
	offsetWithoutShm[32] = 1
	tests := []struct {
		name      string
		data      []byte
		want      string
		truncated bool // the writer died mid-frame
	}{
		{"bad magic", append([]byte("XXXX"), valid(0, 0)[4:]...), "bad frame magic", false},
		{"short prefix", valid(0, 0)[:10], "inside a frame prefix", true},
		{"short header", valid(4, 0)[:framePrefixLen+2], "inside a call frame header", true},
		{"short body", valid(0, 10)[:framePrefixLen+5], "inside a call frame body", true},
		{"body over the limit", valid(0, 2000), "body of 2000 bytes exceeds 1000", false},
		{"huge header", hugeHeader, "header of 2147483647 bytes", false},
		{"offset without shared memory", offsetWithoutShm, "has a body offset but no shared-memory body", false},
	}
	for _, tt := range tests {
		_, err := readFrame(bytes.NewReader(tt.data), 1000)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: readFrame = %v, want ErrProtocol containing %q", tt.name, err, tt.want)
		}
		if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.truncated {
			t.Errorf("%s: readFrame = %v; truncated = %t, want %t", tt.name, err, got, tt.truncated)
		}
	}
	if _, err := releasedIDs(frame{kind: kindRelease, body: []byte{1, 2, 3}}); !errors.Is(err, ErrProtocol) {
		t.Errorf("a 3-byte release body = %v, want ErrProtocol", err)
	}
}

// FuzzReadFrame: any input yields frames or an error, never a panic, and
// never an allocation beyond the limits.
func FuzzReadFrame(f *testing.F) {
	var seed bytes.Buffer
	_ = writeFrame(&seed, frame{kind: kindLoaded, id: 1, header: []byte(`{"functions":[]}`), body: []byte{1, 2, 3}})
	_ = writeFrame(&seed, frame{kind: kindResult, id: 2, flags: flagShm, shmOff: 64, shmLen: 8})
	f.Add(seed.Bytes())
	f.Add([]byte("FLW2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := readFrame(r, 1<<16)
			if err != nil {
				return
			}
			if len(fr.header) > maxHeaderLen || len(fr.body) > 1<<16 {
				t.Fatalf("frame exceeds limits: %d/%d", len(fr.header), len(fr.body))
			}
			if fr.kind == kindRelease {
				_, _ = releasedIDs(fr)
			}
		}
	})
}
