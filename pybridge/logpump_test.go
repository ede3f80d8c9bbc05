package pybridge

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestRelogSurvivesLongLines: a line far over the limit is logged cut
// short with a note, and the lines after it still arrive.
func TestRelogSurvivesLongLines(t *testing.T) {
	huge := strings.Repeat("A", 2_000_000)
	input := "first\n" + huge + "\n" + `{"@level":"error","@message":"after","function":"f"}` + "\n" + "no newline at the end"
	var logs bytes.Buffer
	var tail lineTail
	relog(strings.NewReader(input), "stdout", hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace}), &tail)
	out := logs.String()
	for _, want := range []string{"first", "… 1934464 bytes more", "[ERROR] after: function=f", "no newline at the end"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if n := strings.Count(out, "A"); n > maxLogLine+100 {
		t.Errorf("the long line was logged with %d bytes of it, want at most %d", n, maxLogLine)
	}
	if s := tail.String(); len(s) > tailLines*(tailLineBytes+40) || !strings.Contains(s, "bytes more") {
		t.Errorf("the crash tail is %d bytes: %.200q", len(s), s)
	}
}
