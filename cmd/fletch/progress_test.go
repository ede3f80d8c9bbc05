package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		sent, recv           int64
		totalRows            int64
		bytesRead, totalSize int64
		cols                 int
		want                 string
	}{
		{"rows known", 30_000_000, 25_000_000, 60_000_000, 0, -1, 0,
			" 41% [========>           ] 30.0M rows sent, 25.0M received, 2.5M rows/s, 10s"},
		{"bytes known", 1500, 1000, -1, 750, 1000, 0,
			" 75% [===============>    ] 1500 rows sent, 1000 received, 100 rows/s, 10s"},
		{"nothing known", 20_000, 12_345, -1, 0, -1, 0,
			"20.0k rows sent, 12.3k received, 1234 rows/s, 10s"},
		{"done", 10, 10, 10, 0, -1, 0,
			"100% [====================] 10 rows sent, 10 received, 1 rows/s, 10s"},
		{"narrow terminal", 10, 10, 10, 0, -1, 21,
			"100% [=============="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProgress()
			p.sent(tc.sent)
			p.received(tc.recv)
			p.totalRows.Store(tc.totalRows)
			p.bytesRead.Store(tc.bytesRead)
			p.totalBytes = tc.totalSize
			if got := p.line(10*time.Second, tc.cols); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestProgressByInput: for kinds other than scalar, outputs are not one
// per input row, so progress counts the rows sent.
func TestProgressByInput(t *testing.T) {
	p := newProgress()
	p.byInput = true
	p.sent(30)
	p.received(90)
	p.totalRows.Store(60)
	want := " 50% [==========>         ] 30 rows sent, 90 received, 3 rows/s, 10s"
	if got := p.line(10*time.Second, 0); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestProgressRedraw: the line is redrawn at most ten times a second and
// cleared at the end.
func TestProgressRedraw(t *testing.T) {
	var w lockedBuffer
	p := newProgress()
	p.show(&w)
	p.sent(5)
	time.Sleep(550 * time.Millisecond)
	p.finish()
	out := w.String()
	draws := strings.Count(out, "\r") - 1
	if draws < 3 || draws > 6 {
		t.Errorf("%d redraws in 550 ms, want about 5: %q", draws, out)
	}
	if !strings.HasSuffix(out, "\r\x1b[K") || !strings.Contains(out, "5 rows sent") {
		t.Errorf("output %q: want the counts, then the line cleared", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
