// Command bundlegen builds the Python package bundle that fletch embeds
// next to its go-embed-python interpreter. The build runs it as
//
//	go run ./pybridge/internal/bundlegen -lock pybridge/bundle.lock.json \
//	    -goos linux -goarch amd64 -out pybridge/bundle
//
// # Lock file
//
// The lock file pins, per package, one wheel per target platform:
//
//	{
//	  "python": "3.14",
//	  "packages": [
//	    {"name": "pyarrow", "version": "26.0.1",
//	     "wheels": {"linux-amd64": {"url": "https://...whl", "sha256": "<64 hex>"},
//	                "linux-arm64": {...}}}
//	  ]
//	}
//
// "python" is the CPython minor version the wheels are built for (it must
// match the embedded interpreter). Platforms are GOOS-GOARCH. Wheel URLs must
// be https and every wheel a package needs at run time must be pinned: the
// generator does not resolve dependencies. Unknown fields are rejected.
//
// # What it does
//
// For the target platform it downloads each pinned wheel into a cache
// directory (file named by its sha256; downloads are verified and renamed
// into place, so a cache entry is always complete and correct), unzips the
// wheels into one temporary site-packages tree (rejecting absolute or
// escaping entry names, keeping file modes, pruning tests, C/C++ headers and
// sources, Cython sources, CMake files and bytecode, keeping *.dist-info;
// NAME.data/purelib and NAME.data/platlib are installed as the wheel spec
// says, the other .data directories are dropped), writes the
// manifest fletch-bundle.json at the tree root and packs the tree into the
// output directory with embed_util.CopyForEmbed. The output directory then
// holds exactly README.md (the committed placeholder, never touched),
// files.json, the packed files (binary ones as NAME.gz) and
// fletch-bundle.json.
//
// When the output already holds the manifest that would be produced (same
// platform, packages and lock-file hash) and a files.json, nothing is done;
// -force rebuilds anyway. A platform without pins is an error unless
// -allow-missing is given, which leaves the output holding only README.md.
//
// Exit status: 0 success, 1 failure, 2 usage error. All messages go to
// stderr.
package main
