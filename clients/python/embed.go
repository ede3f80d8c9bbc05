// Package fletchpy embeds the fletch Python package in the server binary,
// so workers run exactly the authoring code users install from this
// directory; there is no second copy to keep in sync.
package fletchpy

import (
	"embed"
	"io/fs"
)

// Explicit patterns, so editors' and pytest's caches are never embedded.
//
//go:embed src/fletch/*.py src/fletch/py.typed
var files embed.FS

// Source returns the package as a tree whose root holds fletch/__init__.py.
func Source() fs.FS {
	sub, err := fs.Sub(files, "src")
	if err != nil {
		panic(err) // "src" is a literal directory of the embedded tree
	}
	return sub
}
