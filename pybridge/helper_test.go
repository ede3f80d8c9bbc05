package pybridge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a fake worker (go-plugin's helper-process
// pattern): fakeInterpreter points the pool at a script that re-executes
// it in TestHelperProcess, which then speaks the frame protocol on fds 3
// and 4 (and maps the shared memory on fd 5) as the scenario in
// FLETCH_FAKE_MODE says.

func fakeInterpreter(t testing.TB, mode string) Interpreter {
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

// fakeFunctions are what the fake loads, in order: a call names one by
// its index.
var fakeFunctions = []string{"echo", "crash", "hang", "slow", "raise", "garbage", "stray", "hold", "oob", "partial", "noreply"}

// fakeShm is the fake's view of its shared memory.
type fakeShm struct {
	mem     []byte
	reqSize int
	replies *arena
	spans   map[uint64]int // reply id → offset
}

func mapFakeShm() *fakeShm {
	spec := os.Getenv(shmKey)
	if spec == "" {
		return nil
	}
	parts := strings.Split(spec, ":")
	fd, _ := strconv.Atoi(parts[0])
	req, _ := strconv.Atoi(parts[1])
	rep, _ := strconv.Atoi(parts[2])
	mem, err := unix.Mmap(fd, 0, req+rep, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return &fakeShm{mem: mem, reqSize: req, replies: newArena(rep), spans: map[uint64]int{}}
}

func fakeWorker(mode string) int {
	in, out := os.NewFile(3, "requests"), os.NewFile(4, "replies")
	send := func(f frame) {
		if err := writeFrame(out, f); err != nil {
			os.Exit(9)
		}
	}
	sendJSON := func(kind frameKind, id uint64, header any) {
		h, _ := json.Marshal(header)
		send(frame{kind: kind, id: id, header: h})
	}
	switch mode {
	case "no-hello":
		time.Sleep(time.Minute)
		return 0
	case "bad-protocol":
		sendJSON(kindHello, 0, hello{Protocol: 99})
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
	shm := mapFakeShm()
	sendJSON(kindHello, 0, hello{Protocol: protocolVersion, PID: os.Getpid(), Python: "fake", SharedMemory: shm != nil})
	fmt.Fprintln(os.Stderr, `{"@level":"warn","@message":"hello from the fake","function":"none"}`)
	fmt.Fprintln(os.Stdout, "a plain stdout line")
	var held []uint64 // inputs of "hold" calls, freed by the next call
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
			fns := make([]Function, len(fakeFunctions))
			for i, name := range fakeFunctions {
				fns[i] = Function{Name: name, Spec: json.RawMessage(`{}`), Module: "m", SourceSHA256: "00"}
			}
			sendJSON(kindLoaded, f.id, loadReply{
				Functions: fns,
				Errors:    []ModuleError{{Module: "broken", Path: "/x/broken.py", Error: "SyntaxError: bad"}},
			})
			continue
		case kindRelease:
			ids, _ := releasedIDs(f)
			for _, id := range ids {
				if off, ok := shm.spans[id]; ok && shm != nil {
					delete(shm.spans, id)
					_, _, _ = shm.replies.free(off)
				}
			}
			continue
		case kindCall:
		default:
			return 8
		}
		input := f.body
		if f.flags&flagShm != 0 {
			input = append([]byte(nil), shm.mem[f.shmOff:f.shmOff+f.shmLen]...)
		}
		name := fakeFunctions[f.fn]
		if len(held) > 0 && name != "hold" {
			send(frame{kind: kindRelease, body: releaseBody(held)})
			held = nil
		}
		// reply echoes input: in the reply half when it fits, else inline.
		reply := func(flags uint16) {
			r := frame{kind: kindResult, id: f.id, flags: flags}
			if off, ok := shm.alloc(len(input)); ok {
				copy(shm.mem[shm.reqSize+off:], input)
				shm.spans[f.id] = off
				r.flags |= flagShm
				r.shmOff, r.shmLen = uint64(off), uint64(len(input))
			} else {
				r.body = input
			}
			send(r)
		}
		switch {
		case mode == "crash" || name == "crash":
			// Go's runtime reports a SIGSEGV itself; die as kill -9 would.
			fmt.Fprintln(os.Stderr, "Fatal Python error: Segmentation fault")
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case name == "hang":
			time.Sleep(time.Hour)
		case name == "slow":
			time.Sleep(300 * time.Millisecond)
			reply(flagInputFree)
		case name == "raise":
			h, _ := json.Marshal(map[string]any{"function": "raise", "row": 2, "type": "ValueError", "message": "bad row", "traceback": "Traceback...\n"})
			send(frame{kind: kindError, id: f.id, flags: flagInputFree, header: h})
		case name == "garbage":
			_, _ = out.Write([]byte("this is not a frame, not at all, and longer than a prefix"))
		case name == "stray":
			// A reply to a request nobody made, as UDF code writing to fd 4 would.
			send(frame{kind: kindResult, id: f.id + 1000})
		case name == "hold":
			held = append(held, f.id)
			reply(0)
		case name == "oob":
			send(frame{kind: kindResult, id: f.id, flags: flagShm | flagInputFree, shmOff: 1 << 40, shmLen: 8})
		case name == "partial":
			// Half a reply, then death.
			var prefix [framePrefixLen]byte
			(&frame{kind: kindResult, id: f.id, body: make([]byte, 100)}).putPrefix(prefix[:])
			_, _ = out.Write(prefix[:20])
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case name == "noreply":
			// Answers nothing, frees nothing: later calls queue behind it.
		default:
			reply(flagInputFree)
		}
	}
}

func (s *fakeShm) alloc(n int) (int, bool) {
	if s == nil || n < shmMinBytes {
		return 0, false
	}
	return s.replies.alloc(n)
}

// signalIgnoringSleep models a worker that does not exit when asked.
func signalIgnoringSleep() {
	time.Sleep(time.Hour)
}
