package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kluctl/go-embed-python/embed_util"
)

const (
	manifestName  = "fletch-bundle.json"
	filesListName = "files.json"       // written by embed_util.CopyForEmbed
	readmeName    = "README.md"        // committed placeholder in the output dir
	stagingPrefix = ".fletch-staging-" // temporary pack dir inside the output dir
)

// manifest is fletch-bundle.json, written at the root of the bundle.
type manifest struct {
	Platform   string            `json:"platform"`
	Python     string            `json:"python"`
	Packages   []manifestPackage `json:"packages"`
	LockSHA256 string            `json:"lock_sha256"`
}

type manifestPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

func newManifest(platform string, l *lockFile, wheels []pinnedWheel, lockSHA string) manifest {
	m := manifest{Platform: platform, Python: l.Python, LockSHA256: lockSHA}
	for _, w := range wheels {
		m.Packages = append(m.Packages, manifestPackage{Name: w.Name, Version: w.Version, SHA256: w.SHA256})
	}
	return m
}

func (m manifest) encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// upToDate reports whether out already holds a complete bundle with
// manifest want. Moving a new bundle into out puts files.json last and
// clearing removes it first, so its presence means the bundle is complete.
func upToDate(out string, want manifest) (bool, error) {
	have, err := os.ReadFile(filepath.Join(out, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	wantBytes, err := want.encode()
	if err != nil {
		return false, err
	}
	var got manifest
	if json.Unmarshal(have, &got) != nil {
		return false, nil // unreadable: rebuild
	}
	gotBytes, err := got.encode()
	if err != nil || !bytes.Equal(gotBytes, wantBytes) {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(out, filesListName)); err != nil {
		return false, nil
	}
	return true, nil
}

// pack packs the site-packages tree into out with embed_util.CopyForEmbed.
// It packs into a staging directory inside out first, so a failure leaves
// the previous bundle in place, then replaces everything in out except
// README.md. CopyForEmbed also writes a .gitattributes ("** binary") for
// committed bundles; this one is never committed, so it is dropped.
func pack(tree, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	staging, err := os.MkdirTemp(out, stagingPrefix)
	if err != nil {
		return fmt.Errorf("create staging dir: %w", err)
	}
	defer os.RemoveAll(staging)

	if err := embed_util.CopyForEmbed(staging, tree); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := os.Remove(filepath.Join(staging, ".gitattributes")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pack: %w", err)
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		switch e.Name() {
		case readmeName:
			return fmt.Errorf("pack: the wheels put a top-level %s in site-packages, which would clash with the placeholder", readmeName)
		case manifestName, filesListName:
			continue
		}
		names = append(names, e.Name())
	}
	// The manifest goes first and files.json last, see upToDate and clearOut.
	names = append([]string{manifestName}, names...)
	names = append(names, filesListName)

	if err := clearOut(out, filepath.Base(staging)); err != nil {
		return err
	}
	for _, name := range names {
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(out, name)); err != nil {
			return fmt.Errorf("move packed bundle into place: %w", err)
		}
	}
	return nil
}

// clearOut removes everything in out except README.md and the entries named
// in keep, files.json first and the manifest last (see upToDate).
func clearOut(out string, keep ...string) error {
	names, err := clearable(out, keep...)
	if err != nil {
		return err
	}
	rank := func(n string) int {
		switch n {
		case filesListName:
			return 0
		case manifestName:
			return 2
		}
		return 1
	}
	for r := range 3 {
		for _, name := range names {
			if rank(name) != r {
				continue
			}
			if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
				return fmt.Errorf("clear output dir: %w", err)
			}
		}
	}
	return nil
}

// clearable returns what clearOut would remove from out. In case -out points
// somewhere wrong, it refuses a directory that holds files but neither a
// manifest nor staging leftovers, that is one bundlegen did not write.
func clearable(out string, keep ...string) ([]string, error) {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read output dir: %w", err)
	}
	var names []string
	ours := false
	for _, e := range entries {
		name := e.Name()
		if name == readmeName || slices.Contains(keep, name) {
			continue
		}
		if name == manifestName || strings.HasPrefix(name, stagingPrefix) {
			ours = true
		}
		names = append(names, name)
	}
	if len(names) > 0 && !ours {
		return nil, fmt.Errorf("refusing to clear %s: it holds %s but no %s, so bundlegen did not write it", out, names[0], manifestName)
	}
	return names, nil
}

// removeStaging removes staging dirs left in out by an interrupted run.
func removeStaging(out string) error {
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// dirSize returns the number of regular files under dir and their total size.
func dirSize(dir string) (files int, size int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		size += info.Size()
		return nil
	})
	return files, size, err
}
