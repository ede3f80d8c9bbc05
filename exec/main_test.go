package exec

import (
	"testing"

	"go.uber.org/goleak"
)

// The Python tests start worker pools, whose goroutines must all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
