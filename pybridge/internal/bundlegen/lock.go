package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// lockFile is the parsed bundle.lock.json (see the package documentation).
type lockFile struct {
	Python   string        `json:"python"`
	Packages []lockPackage `json:"packages"`
}

type lockPackage struct {
	Name    string               `json:"name"`
	Version string               `json:"version"`
	Wheels  map[string]lockWheel `json:"wheels"` // keyed by GOOS-GOARCH
}

type lockWheel struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// pinnedWheel is one wheel to install for the target platform.
type pinnedWheel struct {
	Name    string
	Version string
	lockWheel
}

// parseLock decodes and validates a lock file.
func parseLock(data []byte) (*lockFile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l lockFile
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode: trailing data after the JSON object")
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

func (l *lockFile) validate() error {
	if l.Python == "" {
		return errors.New(`"python" is missing`)
	}
	if len(l.Packages) == 0 {
		return errors.New(`"packages" is empty`)
	}
	seen := make(map[string]bool, len(l.Packages))
	for i, p := range l.Packages {
		if p.Name == "" || p.Version == "" {
			return fmt.Errorf("package %d: name and version are required", i)
		}
		key := strings.ToLower(p.Name)
		if seen[key] {
			return fmt.Errorf("package %s is pinned twice", p.Name)
		}
		seen[key] = true
		if len(p.Wheels) == 0 {
			return fmt.Errorf("package %s: no wheels", p.Name)
		}
		for plat, w := range p.Wheels {
			if err := checkPlatform(plat); err != nil {
				return fmt.Errorf("package %s: %w", p.Name, err)
			}
			u, err := url.Parse(w.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return fmt.Errorf("package %s %s: url %q is not an https URL", p.Name, plat, w.URL)
			}
			if !isSHA256Hex(w.SHA256) {
				return fmt.Errorf("package %s %s: sha256 %q is not 64 lowercase hex digits", p.Name, plat, w.SHA256)
			}
		}
	}
	return nil
}

// wheelsFor returns the wheels to install on platform, in lock order. If a
// package has no wheel for it, the error is a *missingPlatformError.
func (l *lockFile) wheelsFor(platform string) ([]pinnedWheel, error) {
	out := make([]pinnedWheel, 0, len(l.Packages))
	for _, p := range l.Packages {
		w, ok := p.Wheels[platform]
		if !ok {
			return nil, &missingPlatformError{Platform: platform, Package: p.Name, Pinned: sortedKeys(p.Wheels)}
		}
		out = append(out, pinnedWheel{Name: p.Name, Version: p.Version, lockWheel: w})
	}
	return out, nil
}

type missingPlatformError struct {
	Platform string
	Package  string
	Pinned   []string
}

func (e *missingPlatformError) Error() string {
	return fmt.Sprintf("no wheel of %s is pinned for %s (pinned platforms: %s); pass -allow-missing to build without the bundle",
		e.Package, e.Platform, strings.Join(e.Pinned, ", "))
}

// checkPlatform accepts GOOS-GOARCH keys such as linux-amd64.
func checkPlatform(p string) error {
	goos, goarch, ok := strings.Cut(p, "-")
	if !ok || !isLowerAlnum(goos) || !isLowerAlnum(goarch) {
		return fmt.Errorf("platform %q is not of the form GOOS-GOARCH", p)
	}
	return nil
}

func isLowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
