package pybridge

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
)

// bundleFiles holds the pyarrow tree that bundlegen unpacks into bundle/
// at build time; without it the directory holds only its README.
//
//go:embed all:bundle
var bundleFiles embed.FS

// bundleManifest is bundle/fletch-bundle.json.
type bundleManifest struct {
	Platform string `json:"platform"`
	Python   string `json:"python"`
	Packages []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"packages"`
}

// ErrNoBundle means the binary was built without the embedded Python
// packages, so Python UDFs need an external interpreter.
var ErrNoBundle = errors.New("this fletch binary has no embedded Python runtime (build it with `make build`, which bundles pyarrow); pass --python with an interpreter or venv that has pyarrow>=21")

// embeddedBundle returns the bundled packages for this platform.
func embeddedBundle() (fs.FS, bundleManifest, error) {
	var m bundleManifest
	sub, err := fs.Sub(bundleFiles, "bundle")
	if err != nil {
		return nil, m, err
	}
	data, err := fs.ReadFile(sub, "fletch-bundle.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, m, ErrNoBundle
	} else if err != nil {
		return nil, m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, m, fmt.Errorf("embedded bundle manifest: %w", err)
	}
	if want := runtime.GOOS + "-" + runtime.GOARCH; m.Platform != want {
		return nil, m, fmt.Errorf("%w (its bundle is for %s, this is %s)", ErrNoBundle, m.Platform, want)
	}
	return sub, m, nil
}
