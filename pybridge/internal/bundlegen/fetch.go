package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// fetcher downloads pinned wheels into a cache directory. A cache entry is
// named by the wheel's sha256 and only ever appears complete and verified:
// downloads go to a temporary file that is renamed into place after the
// hash matched.
type fetcher struct {
	client   *http.Client
	cacheDir string
	log      io.Writer
}

// shaMismatchError reports a wheel whose content does not match its pin.
type shaMismatchError struct {
	URL, Expected, Got string
}

func (e *shaMismatchError) Error() string {
	return fmt.Sprintf("sha256 mismatch for %s: expected %s, got %s", e.URL, e.Expected, e.Got)
}

// fetch returns the path of the verified cached wheel, downloading it if the
// cache has no entry or a corrupt one.
func (f *fetcher) fetch(ctx context.Context, w pinnedWheel) (string, error) {
	dst := filepath.Join(f.cacheDir, w.SHA256+".whl")
	got, err := fileSHA256(dst)
	switch {
	case err == nil && got == w.SHA256:
		fmt.Fprintf(f.log, "bundlegen: %s %s: using cached %s\n", w.Name, w.Version, dst)
		return dst, nil
	case err == nil:
		fmt.Fprintf(f.log, "bundlegen: %s %s: cached %s has sha256 %s, downloading again\n", w.Name, w.Version, dst, got)
		if err := os.Remove(dst); err != nil {
			return "", fmt.Errorf("remove corrupt cache entry: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read cached wheel: %w", err)
	}
	if err := f.download(ctx, w, dst); err != nil {
		return "", err
	}
	return dst, nil
}

func (f *fetcher) download(ctx context.Context, w pinnedWheel, dst string) (err error) {
	start := time.Now()
	fmt.Fprintf(f.log, "bundlegen: %s %s: downloading %s\n", w.Name, w.Version, w.URL)
	if err := os.MkdirAll(f.cacheDir, 0o755); err != nil {
		return fmt.Errorf("create wheel cache: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.URL, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", w.URL, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: %s", w.URL, resp.Status)
	}

	tmp, err := os.CreateTemp(f.cacheDir, ".partial-*.whl")
	if err != nil {
		return fmt.Errorf("create wheel cache entry: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err != nil {
		return fmt.Errorf("download %s: %w", w.URL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != w.SHA256 {
		return &shaMismatchError{URL: w.URL, Expected: w.SHA256, Got: got}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write wheel cache entry: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write wheel cache entry: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("write wheel cache entry: %w", err)
	}
	fmt.Fprintf(f.log, "bundlegen: %s %s: downloaded %s in %s\n", w.Name, w.Version, mib(n), time.Since(start).Round(100*time.Millisecond))
	return nil
}

func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
