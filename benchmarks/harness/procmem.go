package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procRoot is where the kernel's process file system is mounted.
const procRoot = "/proc"

// treeMem is the memory of a process tree at one moment, in bytes: the sum
// over the processes of each one's resident set (RSS, which counts a page
// shared by two processes twice) and of its proportional set size (PSS,
// which splits each shared page among the processes mapping it).
type treeMem struct {
	rss, pss int64
	procs    int // processes counted
}

// readTreeMem reads the RSS and PSS of pid and of all its descendants from
// <root>/<pid>/smaps_rollup. A descendant that exits while it is read is
// left out; pid itself must be readable.
func readTreeMem(root string, pid int) (treeMem, error) {
	kids, err := descendants(root, pid)
	if err != nil {
		return treeMem{}, err
	}
	var t treeMem
	for i, p := range append([]int{pid}, kids...) {
		rss, pss, err := readRollup(root, p)
		if err != nil {
			if i > 0 && gone(err) {
				continue
			}
			return treeMem{}, err
		}
		t.rss += rss
		t.pss += pss
		t.procs++
	}
	return t, nil
}

// gone reports whether err says that a process no longer exists (or never
// had memory: a zombie).
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, errNoMemory)
}

// errNoMemory marks an smaps_rollup without an Rss line: a zombie's.
var errNoMemory = errors.New("no Rss in smaps_rollup")

// readRollup returns the Rss and Pss of one process, in bytes.
func readRollup(root string, pid int) (rss, pss int64, err error) {
	path := filepath.Join(root, strconv.Itoa(pid), "smaps_rollup")
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	rss, pss, err = parseRollup(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return rss, pss, nil
}

// parseRollup reads the Rss: and Pss: lines of an smaps_rollup file (in
// kB) and returns them in bytes.
func parseRollup(r io.Reader) (rss, pss int64, err error) {
	var haveRSS, havePSS bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "Rss" && key != "Pss") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("odd %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "Rss" {
			rss, haveRSS = kb<<10, true
		} else {
			pss, havePSS = kb<<10, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !haveRSS || !havePSS {
		return 0, 0, errNoMemory
	}
	return rss, pss, nil
}

// descendants lists the processes descended from pid (children,
// grandchildren, ...), found by reading every <root>/<n>/stat for its
// parent, as ps does; it needs nothing of the kernel's configuration.
func descendants(root string, pid int) ([]int, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n <= 0 {
			continue // not a process
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // it exited since the listing
		}
		ppid, err := parseStatPPID(b)
		if err != nil {
			return nil, fmt.Errorf("process %d: %w", n, err)
		}
		children[ppid] = append(children[ppid], n)
	}
	var out []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		out = append(out, p)
	}
	return out, nil
}

// parseStatPPID returns the parent pid from the text of /proc/<pid>/stat:
// "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
func parseStatPPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("odd stat %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("odd stat %q", stat)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("stat ppid: %w", err)
	}
	return ppid, nil
}

// memPeak is what sampling a process tree over an interval found.
type memPeak struct {
	rss, pss int64 // the highest tree totals at any sample (not necessarily the same one)
	procs    int   // the most processes in the tree at a sample
	samples  int
}

func (p *memPeak) add(t treeMem) {
	p.rss, p.pss, p.procs = max(p.rss, t.rss), max(p.pss, t.pss), max(p.procs, t.procs)
	p.samples++
}

// sampler reads a process tree's memory every interval, from when it is
// started until finish, and keeps the peaks.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	peak memPeak // written by the sampling goroutine until done is closed
	err  error
}

// startSampler samples the tree of pid under root at once, then every
// interval; finish takes a last sample and returns the peaks.
func startSampler(root string, pid int, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			t, err := readTreeMem(root, pid)
			if err != nil {
				s.err = err
				return
			}
			s.peak.add(t)
			select {
			case <-s.stop:
				if t, err = readTreeMem(root, pid); err != nil {
					s.err = err
					return
				}
				s.peak.add(t)
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish ends the sampling and returns what it found.
func (s *sampler) finish() (memPeak, error) {
	close(s.stop)
	<-s.done
	return s.peak, s.err
}
