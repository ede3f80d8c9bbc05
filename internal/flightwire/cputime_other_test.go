//go:build !unix

package flightwire

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
