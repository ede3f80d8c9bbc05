package pybridge

import (
	"context"
	"testing"
)

// BenchmarkRoundTrip is one small call through a fake worker at a time:
// the Go side and the pipes of a call, without Python.
func BenchmarkRoundTrip(b *testing.B) {
	p, _ := startPool(b, "ok", 1)
	in := Bytes(make([]byte, 200))
	for b.Loop() {
		out, err := p.Call(context.Background(), Request{Fn: "echo", Input: in})
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
}
