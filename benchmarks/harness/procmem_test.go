package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseRollup(t *testing.T) {
	const rollup = `55d0c0a00000-7ffd1c3f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               12345 kB
Pss:                6789 kB
Pss_Dirty:          5000 kB
Pss_Anon:           4000 kB
Pss_Shmem:          1000 kB
Shared_Clean:       3000 kB
`
	tests := []struct {
		name     string
		give     string
		wantRSS  int64
		wantPSS  int64
		wantErr  bool
		noMemory bool
	}{
		{name: "rollup", give: rollup, wantRSS: 12345 << 10, wantPSS: 6789 << 10},
		{name: "zombie", give: "", wantErr: true, noMemory: true},
		{name: "no Pss", give: "Rss: 1 kB\n", wantErr: true, noMemory: true},
		{name: "bad number", give: "Rss: x kB\nPss: 1 kB\n", wantErr: true},
		{name: "odd unit", give: "Rss: 1 MB\nPss: 1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, pss, err := parseRollup(strings.NewReader(tt.give))
			if (err != nil) != tt.wantErr || errors.Is(err, errNoMemory) != tt.noMemory {
				t.Fatalf("parseRollup(%q) error = %v, want error %v (no memory %v)", tt.give, err, tt.wantErr, tt.noMemory)
			}
			if rss != tt.wantRSS || pss != tt.wantPSS {
				t.Errorf("parseRollup(%q) = %d, %d; want %d, %d", tt.give, rss, pss, tt.wantRSS, tt.wantPSS)
			}
		})
	}
}

func TestParseStatPPID(t *testing.T) {
	tests := []struct {
		give    string
		want    int
		wantErr bool
	}{
		{give: "1234 (fletch) S 42 1234 1234 0 -1 4194560", want: 42},
		{give: "77 (python3 -m x) R 1234 77 1 0", want: 1234},
		{give: "78 (a) b) (c) S 9 78 1 0", want: 9}, // comm holds ") ("
		{give: "79 nothing", wantErr: true},
		{give: "80 (x)", wantErr: true},
		{give: "81 (x) S ppid", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseStatPPID([]byte(tt.give))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatPPID(%q) = %d, %v; want %d (error %v)", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

// fakeProc writes a /proc with the given processes: pid → ppid, and for
// those in rollups, an smaps_rollup ("" for a zombie's).
func fakeProc(t *testing.T, ppids map[int]int, rollups map[int]string) string {
	t.Helper()
	root := t.TempDir()
	write := func(pid int, name, text string) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pid, ppid := range ppids {
		write(pid, "stat", strconv.Itoa(pid)+" (p "+strconv.Itoa(pid)+") S "+strconv.Itoa(ppid)+" 1 1 0\n")
	}
	for pid, text := range rollups {
		write(pid, "smaps_rollup", text)
	}
	// Not processes, or ones that exited between the listing and the read.
	for _, dir := range []string{"self", "sys", "99"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDescendantsAndTreeMem(t *testing.T) {
	// 1 ─┬─ 10 ─┬─ 11 ── 12
	//    │      └─ 13
	//    └─ 20
	ppids := map[int]int{1: 0, 10: 1, 11: 10, 12: 11, 13: 10, 20: 1}
	kb := func(rss, pss int) string {
		return "0-0 ---p 0 00:00 0 [rollup]\nRss: " + strconv.Itoa(rss) + " kB\nPss: " + strconv.Itoa(pss) + " kB\n"
	}
	// 12 has no smaps_rollup (it exited after the stat scan); 13 is a zombie.
	root := fakeProc(t, ppids, map[int]string{1: kb(1, 1), 10: kb(100, 60), 11: kb(50, 30), 13: "", 20: kb(7, 7)})

	tests := []struct {
		pid       int
		wantKids  []int
		wantMem   treeMem
		wantError bool
	}{
		{pid: 10, wantKids: []int{11, 12, 13}, wantMem: treeMem{rss: 150 << 10, pss: 90 << 10, procs: 2}},
		{pid: 11, wantKids: []int{12}, wantMem: treeMem{rss: 50 << 10, pss: 30 << 10, procs: 1}},
		{pid: 20, wantKids: nil, wantMem: treeMem{rss: 7 << 10, pss: 7 << 10, procs: 1}},
		{pid: 1, wantKids: []int{10, 11, 12, 13, 20}, wantMem: treeMem{rss: 158 << 10, pss: 98 << 10, procs: 4}},
		{pid: 12, wantKids: nil, wantError: true}, // the root itself must be readable
		{pid: 13, wantKids: nil, wantError: true},
	}
	for _, tt := range tests {
		kids, err := descendants(root, tt.pid)
		if err != nil {
			t.Fatalf("descendants(%d): %v", tt.pid, err)
		}
		slices.Sort(kids)
		if !slices.Equal(kids, tt.wantKids) {
			t.Errorf("descendants(%d) = %v, want %v", tt.pid, kids, tt.wantKids)
		}
		got, err := readTreeMem(root, tt.pid)
		if (err != nil) != tt.wantError || got != tt.wantMem {
			t.Errorf("readTreeMem(%d) = %+v, %v; want %+v (error %v)", tt.pid, got, err, tt.wantMem, tt.wantError)
		}
	}
}

// needRollup skips the test where the kernel has no smaps_rollup (before
// Linux 4.14, or not Linux).
func needRollup(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(procRoot, "self", "smaps_rollup")); err != nil {
		t.Skipf("no smaps_rollup here: %v", err)
	}
}

// The test process is sampled with its child sh and the sh's child sleep.
func TestTreeMemOfThisProcess(t *testing.T) {
	needRollup(t)
	self := os.Getpid()
	alone, err := readTreeMem(procRoot, self)
	if err != nil {
		t.Fatal(err)
	}
	if alone.procs != 1 || alone.rss <= 0 || alone.pss <= 0 || alone.pss > alone.rss {
		t.Errorf("this process alone: %+v, want 1 process with 0 < PSS ≤ RSS", alone)
	}

	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sh: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	var kids []int
	for deadline := time.Now().Add(10 * time.Second); len(kids) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("descendants of the test process = %v, want sh %d and its sleep", kids, cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
		if kids, err = descendants(procRoot, self); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("descendants of the test process = %v, want sh %d among them", kids, cmd.Process.Pid)
	}
	sleeps, err := descendants(procRoot, cmd.Process.Pid)
	if err != nil || len(sleeps) != 1 {
		t.Fatalf("descendants of sh = %v, %v; want its sleep", sleeps, err)
	}
	if comm, _ := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(sleeps[0]), "comm")); strings.TrimSpace(string(comm)) != "sleep" {
		t.Errorf("sh's child is %q, want sleep", comm)
	}
	tree, err := readTreeMem(procRoot, self)
	if err != nil {
		t.Fatal(err)
	}
	if tree.procs != 3 || tree.rss <= alone.rss || tree.pss <= 0 || tree.pss > tree.rss {
		t.Errorf("with sh and sleep: %+v, want 3 processes, more RSS than %d, 0 < PSS ≤ RSS", tree, alone.rss)
	}
}

// A buffer the test touches while sampled shows in the peaks.
func TestSamplerKeepsPeaks(t *testing.T) {
	needRollup(t)
	self := os.Getpid()
	before, err := readTreeMem(procRoot, self)
	if err != nil {
		t.Fatal(err)
	}
	s := startSampler(procRoot, self, 5*time.Millisecond)
	const size = 64 << 20
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	time.Sleep(50 * time.Millisecond)
	peak, err := s.finish()
	runtime.KeepAlive(buf)
	if err != nil {
		t.Fatal(err)
	}
	if peak.samples < 3 {
		t.Errorf("%d samples in 50 ms at 5 ms, want at least 3", peak.samples)
	}
	if grew := peak.rss - before.rss; grew < size*3/4 {
		t.Errorf("peak RSS %d is %d above the start, want at least %d: the touched 64 MiB", peak.rss, grew, size*3/4)
	}
	if peak.pss <= 0 || peak.pss > peak.rss || peak.procs != 1 {
		t.Errorf("peak %+v: want one process, 0 < PSS ≤ RSS", peak)
	}
}

func TestSamplerReportsAMissingProcess(t *testing.T) {
	s := startSampler(t.TempDir(), 4242, time.Millisecond)
	if _, err := s.finish(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sampling a process that does not exist: %v, want ErrNotExist", err)
	}
}
