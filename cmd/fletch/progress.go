package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress counts the rows of a call and, on a terminal, shows them on
// one redrawn line of stderr, at most ten times a second.
type progress struct {
	sentRows, recvRows atomic.Int64
	bytesRead          atomic.Int64
	totalRows          atomic.Int64 // -1 if unknown
	totalBytes         int64        // the input's size, -1 if unknown
	// byInput measures progress by the rows sent: outputs other than a
	// scalar function's are not one per input row.
	byInput bool

	w       io.Writer
	started time.Time
	stop    chan struct{}
	done    chan struct{}
}

const progressInterval = 100 * time.Millisecond

func newProgress() *progress {
	p := &progress{totalBytes: -1, started: time.Now()}
	p.totalRows.Store(-1)
	return p
}

func (p *progress) elapsed() time.Duration { return time.Since(p.started).Round(time.Millisecond) }

func (p *progress) sent(rows int64)     { p.sentRows.Add(rows) }
func (p *progress) received(rows int64) { p.recvRows.Add(rows) }

// show starts redrawing the line on w.
func (p *progress) show(w io.Writer) {
	p.w = w
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(p.w, "\r\x1b[K")
				return
			case <-t.C:
				fmt.Fprint(p.w, "\r"+p.line(time.Since(p.started), termWidth(w))+"\x1b[K")
			}
		}
	}()
}

// finish clears the line, if shown, and waits for the redrawing to stop.
func (p *progress) finish() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}

// line renders the progress, e.g.
// " 42% [=======>          ] 25.2M rows in, 25.1M out, 3.1M rows/s, 8s".
func (p *progress) line(elapsed time.Duration, cols int) string {
	sent, recv := p.sentRows.Load(), p.recvRows.Load()
	done := recv
	if p.byInput {
		done = sent
	}
	frac := -1.0
	if total := p.totalRows.Load(); total > 0 {
		frac = float64(done) / float64(total)
	} else if p.totalBytes > 0 {
		frac = float64(p.bytesRead.Load()) / float64(p.totalBytes)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	text := fmt.Sprintf("%s rows sent, %s received, %s rows/s, %s",
		shortCount(float64(sent)), shortCount(float64(recv)), shortCount(rate), elapsed.Truncate(time.Second))
	if frac >= 0 {
		frac = min(frac, 1)
		const barWidth = 20
		filled := int(frac * barWidth)
		bar := strings.Repeat("=", filled)
		if filled < barWidth {
			bar += ">" + strings.Repeat(" ", barWidth-filled-1)
		}
		text = fmt.Sprintf("%3d%% [%s] %s", int(frac*100), bar, text)
	}
	if cols > 1 && len(text) >= cols {
		text = text[:cols-1]
	}
	return text
}

// summary is the line that replaces the progress line at the end, e.g.
// "60000000 rows in 52.9s (1.1M rows/s)".
func (p *progress) summary() string {
	el := p.elapsed()
	rate := func(n int64) string { return shortCount(float64(n) / max(el.Seconds(), 1e-9)) }
	if p.byInput {
		sent := p.sentRows.Load()
		return fmt.Sprintf("%d rows in, %d out, in %s (%s rows/s in)", sent, p.recvRows.Load(), el, rate(sent))
	}
	return fmt.Sprintf("%d rows in %s (%s rows/s)", p.recvRows.Load(), el, rate(p.recvRows.Load()))
}

// shortCount writes n with a k/M/G suffix.
func shortCount(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			return cols
		}
	}
	return 0
}
