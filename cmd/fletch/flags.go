package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// envName is the environment variable that backs a flag: --max-batch-rows
// is FLETCH_MAX_BATCH_ROWS.
func envName(flagName string) string {
	return "FLETCH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if that is set.
func applyEnv(fs *flag.FlagSet) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if err != nil || given[f.Name] || !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = &usageError{msg: fmt.Sprintf("%s=%q: %v", envName(f.Name), v, e)}
		}
	})
	return err
}

// byteSize is a flag value in bytes that accepts KiB, MiB and GiB suffixes.
type byteSize int

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"G", 30}, {"M", 20}, {"K", 10}, {"B", 0}}

func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	shift := uint(0)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, shift = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<31-1)>>shift {
		return 0, fmt.Errorf("%q is not a size between 1 byte and 2 GiB (examples: 65536, 64KiB, 256MiB)", s)
	}
	return n << shift, nil
}

func formatBytes(n int64) string {
	for _, u := range byteUnits[:3] {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// stringList is a repeatable flag. From an environment variable it takes
// a list separated like PATH (":" on Unix).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, string(os.PathListSeparator)) }

func (l *stringList) Set(s string) error {
	for _, part := range strings.Split(s, string(os.PathListSeparator)) {
		if part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}
