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
		{kind: kindHello, header: []byte(`{"protocol":1}`)},
		{kind: kindCall, header: []byte(`{"fn":"f"}`), body: bytes.Repeat([]byte{7}, 100_000)},
		{kind: kindResult, header: []byte(`{}`)},
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
		if got.kind != want.kind || !bytes.Equal(got.header, want.header) || !bytes.Equal(got.body, want.body) {
			t.Errorf("frame %d = %s %q (%d bytes), want %s %q (%d bytes)", i, got.kind, got.header, len(got.body), want.kind, want.header, len(want.body))
		}
	}
	if _, err := readFrame(&buf, 1<<20); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	valid := func(body int) []byte {
		var b bytes.Buffer
		_ = writeFrame(&b, frame{kind: kindCall, header: []byte(`{}`), body: make([]byte, body)})
		return b.Bytes()
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"bad magic", append([]byte("XXXX"), valid(0)[4:]...), "bad frame magic"},
		{"short prefix", valid(0)[:10], "inside a frame prefix"},
		{"short header", valid(0)[:25], "inside a call frame header"},
		{"short body", valid(10)[:30], "inside a call frame body"},
		{"body over the limit", valid(2000), "body of 2000 bytes exceeds 1000"},
		{"huge header", append(append([]byte("FLW1\x04\x00\x00\x00"), 0xff, 0xff, 0xff, 0x7f), make([]byte, 12)...), "header of 2147483647 bytes"},
	}
	for _, tt := range tests {
		_, err := readFrame(bytes.NewReader(tt.data), 1000)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: readFrame = %v, want ErrProtocol containing %q", tt.name, err, tt.want)
		}
	}
}

// FuzzReadFrame: any input yields frames or an error, never a panic, and
// never an allocation beyond the limits.
func FuzzReadFrame(f *testing.F) {
	var seed bytes.Buffer
	_ = writeFrame(&seed, frame{kind: kindLoaded, header: []byte(`{"functions":[]}`), body: []byte{1, 2, 3}})
	f.Add(seed.Bytes())
	f.Add([]byte("FLW1"))
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
		}
	})
}
