package main

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// extractStats counts what extractWheel did.
type extractStats struct {
	Files  int   // regular files written
	Bytes  int64 // their uncompressed size
	Pruned int   // file entries skipped by prune rules
}

// extractWheel unpacks the wheel at wheelPath into the site-packages tree
// dest. Every entry name is checked before anything is written, so a wheel
// with a hostile entry leaves dest untouched. File modes are kept, up to
// installPerm; files a runtime never needs are pruned (see pruned). A file
// that already exists in dest, say from another wheel, is an error.
func extractWheel(wheelPath, dest string) (extractStats, error) {
	var st extractStats
	zr, err := zip.OpenReader(wheelPath)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure names get our own error below
		return st, fmt.Errorf("open wheel: %w", err)
	}
	defer zr.Close()

	for _, f := range zr.File {
		if err := checkEntry(f); err != nil {
			return st, err
		}
	}

	root, err := os.OpenRoot(dest)
	if err != nil {
		return st, fmt.Errorf("open site-packages: %w", err)
	}
	defer root.Close()

	for _, f := range zr.File {
		isDir := strings.HasSuffix(f.Name, "/")
		name, ok := installPath(path.Clean(f.Name), isDir)
		if !ok {
			if !isDir {
				st.Pruned++
			}
			continue
		}
		if isDir {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return st, fmt.Errorf("extract %s: %w", f.Name, err)
			}
			continue
		}
		n, err := extractFile(root, f, name)
		if err != nil {
			return st, fmt.Errorf("extract %s: %w", f.Name, err)
		}
		st.Files++
		st.Bytes += n
	}
	return st, nil
}

// checkEntry rejects entry names that are absolute or leave the tree, and
// entry types other than regular files and directories.
func checkEntry(f *zip.File) error {
	name := f.Name
	switch {
	case name == "":
		return errors.New("unsafe zip entry: empty name")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name):
		return fmt.Errorf("unsafe zip entry %q: absolute path", name)
	case strings.Contains(name, `\`):
		return fmt.Errorf("unsafe zip entry %q: contains a backslash", name)
	case !filepath.IsLocal(name) || path.Clean(name) == ".":
		return fmt.Errorf("unsafe zip entry %q: escapes the extraction directory", name)
	}
	mode := f.Mode()
	if !mode.IsRegular() && !mode.IsDir() {
		return fmt.Errorf("unsupported zip entry %q: mode %s (only files and directories)", name, mode)
	}
	if mode.IsDir() != strings.HasSuffix(name, "/") {
		return fmt.Errorf("unsupported zip entry %q: directory mode and name disagree", name)
	}
	return nil
}

func extractFile(root *os.Root, f *zip.File, name string) (int64, error) {
	perm := installPerm(f.Mode())
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return 0, fmt.Errorf("%s is provided twice (duplicate entry, or another wheel has it)", name)
	}
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, rc) // the zip reader checks the CRC at EOF
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	return n, root.Chmod(name, perm) // undo the umask
}

// installPerm is the permission an extracted file gets: the entry's own,
// notably its executable bits, but always readable by all and writable only
// by the owner, as pip installs it (zips made without Unix attributes say
// 0666 or nothing).
func installPerm(mode fs.FileMode) fs.FileMode {
	return (mode.Perm() | 0o644) &^ 0o022
}

// installPath maps a cleaned wheel entry name to its path in site-packages,
// or reports false if the entry is not installed. Per the wheel spec,
// NAME.data/purelib/ and NAME.data/platlib/ hold site-packages content;
// the other .data directories (scripts, headers, data) are not needed.
func installPath(name string, isDir bool) (string, bool) {
	parts := strings.Split(name, "/")
	if strings.HasSuffix(parts[0], ".data") {
		if len(parts) < 3 || (parts[1] != "purelib" && parts[1] != "platlib") {
			return "", false
		}
		parts = parts[2:]
		name = strings.Join(parts, "/")
	}
	if pruned(parts, isDir) {
		return "", false
	}
	return name, true
}

// pruned reports whether a path (split on "/") is something a runtime never
// needs: tests, C/C++ headers and sources (pyarrow/src holds the C++ sources
// of libarrow_python and their CMake files), Cython sources, CMake files and
// bytecode. *.dist-info is always kept, so importlib.metadata works.
func pruned(parts []string, isDir bool) bool {
	if strings.HasSuffix(parts[0], ".dist-info") {
		return false
	}
	if len(parts) >= 2 && parts[0] == "pyarrow" {
		switch parts[1] {
		case "tests", "include", "src":
			return true
		}
	}
	dirs := parts[:len(parts)-1]
	if isDir {
		dirs = parts
	}
	if slices.Contains(dirs, "cmake") || slices.Contains(parts, "__pycache__") {
		return true
	}
	if isDir {
		return false
	}
	switch path.Ext(parts[len(parts)-1]) {
	case ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".cc", ".cpp", ".pyc":
		return true
	}
	return false
}

// removeEmptyDirs removes the directories under root (not root itself) that
// are empty once pruning is done, deepest first.
func removeEmptyDirs(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			if err := os.Remove(d); err != nil {
				return err
			}
		}
	}
	return nil
}
