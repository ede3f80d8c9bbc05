//go:build !((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package pybridge

// go-embed-python ships no interpreter for this platform.
func extractPython(string) (string, string, error) { return "", "", ErrNoBundle }
