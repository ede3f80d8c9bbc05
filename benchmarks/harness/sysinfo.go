package main

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sysInfo is the machine and software a run measured on.
type sysInfo struct {
	date       string
	machine    string // uname -m
	kernel     string // uname -s -r
	cpu        string
	cores      int
	goVersion  string
	arrowGo    string
	fletch     string // fletch version
	hostPython string // the interpreter the peer venvs were made from
	servers    map[string]string
	command    string
	mode       string
	note       string
	load       string // load averages at the start and the end of the run
}

// loadAvg is the 1, 5 and 15 minute load averages, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// collectSysInfo reads the machine and the versions the servers reported.
func collectSysInfo(ctx context.Context, e *env, versions map[string]string) sysInfo {
	si := sysInfo{
		date:      time.Now().UTC().Format("2006-01-02"),
		cpu:       cpuModel(),
		cores:     runtime.NumCPU(),
		goVersion: runtime.Version(),
		arrowGo:   "unknown",
		servers:   versions,
		command:   "go run ./benchmarks/harness " + shellQuote(os.Args[1:]),
		mode:      e.cfg.mode,
		note:      e.cfg.note,
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		si.machine = unix.ByteSliceToString(u.Machine[:])
		si.kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/apache/arrow-go/v18" {
				si.arrowGo = d.Version
			}
		}
	}
	if e.fletch != "" {
		if v, err := output(ctx, e.fletch, "version"); err == nil {
			si.fletch = v
		}
	}
	if v, err := output(ctx, e.cfg.python, "-c", "import platform; print('CPython', platform.python_version())"); err == nil {
		si.hostPython = v
	}
	return si
}

// shellQuote joins args as a shell would need them typed.
func shellQuote(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,+@") == "" {
			quoted[i] = a
		} else {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

// cpuModel is the CPU's name from /proc/cpuinfo: "model name" on x86-64;
// arm64 kernels often give only implementer and part numbers.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	fields := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if ok && v != "" && fields[k] == "" {
			fields[k] = v
		}
	}
	for _, k := range []string{"model name", "Model name", "Hardware", "cpu model"} {
		if v := fields[k]; v != "" {
			return v
		}
	}
	if impl, part := fields["CPU implementer"], fields["CPU part"]; impl != "" {
		return "CPU implementer " + impl + ", part " + part
	}
	return "unknown"
}
