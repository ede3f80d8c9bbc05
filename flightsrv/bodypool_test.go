package flightsrv

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestBodyPool(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newBodyPool(mem)
	a := p.Allocate(100_000)
	if len(a) != 100_000 || cap(a) != 128<<10 {
		t.Fatalf("Allocate(100000): len %d cap %d, want 100000 and 128 KiB", len(a), cap(a))
	}
	p.Free(a)
	b := p.Allocate(70_000)
	if &b[0] != &a[0] {
		t.Error("a freed buffer of the same class was not reused")
	}
	c := p.Reallocate(120_000, b) // still fits its class
	if &c[0] != &a[0] || len(c) != 120_000 {
		t.Error("Reallocate within the class moved the buffer")
	}
	d := p.Reallocate(200_000, c) // the next class: a new buffer, the old one kept
	if cap(d) != 256<<10 {
		t.Errorf("Reallocate(200000): cap %d", cap(d))
	}
	huge := p.Allocate(maxPooled + 1) // not pooled
	small := p.Allocate(10)           // the smallest class
	if cap(small) != minPooled {
		t.Errorf("Allocate(10): cap %d, want %d", cap(small), minPooled)
	}
	for _, x := range [][]byte{d, huge, small} {
		p.Free(x)
	}
	var many [][]byte
	for range keepPerClass + 2 {
		many = append(many, p.Allocate(1<<20))
	}
	for _, x := range many { // more than are kept: the rest go back at once
		p.Free(x)
	}
	var big [][]byte
	for range keepPerClass {
		big = append(big, p.Allocate(8<<20))
	}
	for _, x := range big { // 32 MiB: over the total, so not all are kept
		p.Free(x)
	}
	p.mu.Lock()
	kept := len(p.free[1<<20])
	bytes := p.kept
	p.mu.Unlock()
	if bytes > keepBytes {
		t.Errorf("the pool keeps %d bytes, over its %d", bytes, keepBytes)
	}
	if kept != keepPerClass {
		t.Errorf("%d buffers of 1 MiB kept, want %d", kept, keepPerClass)
	}
	p.drain()
}
