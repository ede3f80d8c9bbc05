package pybridge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// relog copies a worker's output stream into log, one entry per line.
// Lines that are JSON objects with "@message" (what fletch's worker writes
// for print() and logging) keep their level and fields; other lines, such
// as a crashing interpreter's dump, are logged as they are. A line longer
// than maxLogLine is cut there, with a note of what was dropped: reading
// goes on whatever a UDF prints, so the worker is never left writing to a
// pipe nobody reads. The last lines are kept in tail for crash reports.
func relog(r io.Reader, stream string, log hclog.Logger, tail *lineTail) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, dropped, err := readLine(br, maxLogLine)
		line := string(raw)
		if dropped > 0 {
			line += fmt.Sprintf(" … %d bytes more", dropped)
		}
		if line != "" {
			if !isNativeFrame(line) {
				tail.add(line)
			}
			level, msg, args := parseLogLine(line, stream)
			log.Log(level, msg, args...)
		}
		if err != nil {
			return
		}
	}
}

// maxLogLine bounds what one logged line keeps of a worker's output line.
const maxLogLine = 64 << 10

// readLine reads up to the next newline, keeping at most limit bytes of
// the line (without the newline) and counting the rest as dropped.
func readLine(br *bufio.Reader, limit int) (line []byte, dropped int, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		keep := min(len(chunk), limit-len(line))
		line = append(line, chunk[:keep]...)
		dropped += len(chunk) - keep
		if err != bufio.ErrBufferFull {
			return line, dropped, err
		}
	}
}

func parseLogLine(line, stream string) (hclog.Level, string, []any) {
	plainLevel := hclog.Info
	if stream == "stderr" {
		plainLevel = hclog.Warn
	}
	if !strings.HasPrefix(line, "{") {
		return plainLevel, line, []any{"stream", stream}
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		return plainLevel, line, []any{"stream", stream}
	}
	msg, ok := entry["@message"].(string)
	if !ok {
		return plainLevel, line, []any{"stream", stream}
	}
	level := plainLevel
	if l, ok := entry["@level"].(string); ok {
		if parsed := hclog.LevelFromString(l); parsed != hclog.NoLevel {
			level = parsed
		}
	}
	var args []any
	for k, v := range entry {
		if !strings.HasPrefix(k, "@") {
			args = append(args, k, v)
		}
	}
	return level, msg, args
}

// isNativeFrame matches the C stack lines faulthandler prints after the
// Python ones; they would crowd the Python traceback out of a crash report.
func isNativeFrame(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), "Binary file ")
}

// lineTail keeps the last few lines a worker wrote, for error messages.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 20

// tailLineBytes bounds each line a crash report quotes.
const tailLineBytes = 512

func (t *lineTail) add(line string) {
	if len(line) > tailLineBytes {
		line = line[:tailLineBytes] + fmt.Sprintf(" … %d bytes more", len(line)-tailLineBytes)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
