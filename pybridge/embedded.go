//go:build (linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64)

package pybridge

import (
	"github.com/kluctl/go-embed-python/python"
)

// extractPython unpacks the embedded CPython under dir (suffixed with a
// digest of its contents) and returns its home and executable.
func extractPython(dir string) (home, exe string, err error) {
	ep, err := python.NewEmbeddedPythonWithTmpDir(dir, true)
	if err != nil {
		return "", "", err
	}
	exe, err = ep.GetExePath()
	return ep.GetExtractedPath(), exe, err
}
