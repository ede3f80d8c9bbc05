package pybridge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake worker (go-plugin's helper-process
// pattern): fakeInterpreter points the pool at a script that re-executes
// it in TestHelperProcess, which then speaks the frame protocol on fds 3
// and 4 as the scenario in FLETCH_FAKE_MODE says.

func fakeInterpreter(t *testing.T, mode string) Interpreter {
	t.Helper()
	script := filepath.Join(t.TempDir(), "python")
	body := fmt.Sprintf("#!/bin/sh\nexec %q -test.run='^TestHelperProcess$' -test.v=false\n", os.Args[0])
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return Interpreter{Path: script, Env: []string{"GO_WANT_HELPER_PROCESS=1", "FLETCH_FAKE_MODE=" + mode}}
}

func TestHelperProcess(t *testing.T) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") != "1" {
		return
	}
	os.Exit(fakeWorker(os.Getenv("FLETCH_FAKE_MODE")))
}

func fakeWorker(mode string) int {
	in, out := os.NewFile(3, "requests"), os.NewFile(4, "replies")
	send := func(kind frameKind, header any, body []byte) {
		h, _ := json.Marshal(header)
		if err := writeFrame(out, frame{kind: kind, header: h, body: body}); err != nil {
			os.Exit(9)
		}
	}
	switch mode {
	case "no-hello":
		time.Sleep(time.Minute)
		return 0
	case "bad-protocol":
		send(kindHello, hello{Protocol: 99}, nil)
		return 0
	case "exit-at-start":
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):\nImportError: no module named pyarrow")
		return 3
	case "start-once":
		// The first start succeeds; every replacement fails.
		if _, err := os.OpenFile(os.Getenv("FLETCH_FAKE_MARKER"), os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "cannot start again")
			return 4
		}
	}
	send(kindHello, hello{Protocol: protocolVersion, PID: os.Getpid(), Python: "fake"}, nil)
	fmt.Fprintln(os.Stderr, `{"@level":"warn","@message":"hello from the fake","function":"none"}`)
	fmt.Fprintln(os.Stdout, "a plain stdout line")
	for {
		f, err := readFrame(in, 1<<30)
		if err != nil {
			if mode == "slow-exit" {
				signalIgnoringSleep()
			}
			return 0
		}
		switch f.kind {
		case kindLoad:
			send(kindLoaded, loadReply{
				Functions: []Function{{Name: "echo", Spec: json.RawMessage(`{}`), Module: "m", SourceSHA256: "00"}},
				Errors:    []ModuleError{{Module: "broken", Path: "/x/broken.py", Error: "SyntaxError: bad"}},
			}, nil)
		case kindCall:
			var h struct{ Fn string }
			_ = json.Unmarshal(f.header, &h)
			switch {
			case mode == "crash" || h.Fn == "crash":
				// Go's runtime reports a SIGSEGV itself; die as kill -9 would.
				fmt.Fprintln(os.Stderr, "Fatal Python error: Segmentation fault")
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			case h.Fn == "hang":
				time.Sleep(time.Hour)
			case h.Fn == "slow":
				time.Sleep(300 * time.Millisecond)
				send(kindResult, struct{}{}, f.body)
			case h.Fn == "raise":
				send(kindError, map[string]any{"function": "raise", "row": 2, "type": "ValueError", "message": "bad row", "traceback": "Traceback...\n"}, nil)
			case h.Fn == "garbage":
				_, _ = out.Write([]byte("this is not a frame, not at all"))
			default:
				send(kindResult, struct{}{}, f.body)
			}
		}
	}
}

// signalIgnoringSleep models a worker that does not exit when asked.
func signalIgnoringSleep() {
	time.Sleep(time.Hour)
}
