// Package tokens reads the bearer tokens that may call a fletch server: a
// file with one token per line, NAME TOKEN [SCOPE...].
package tokens

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Scopes a token may hold. A token without any holds ScopeCall.
const (
	ScopeCall  = "call"
	ScopeAdmin = "admin"
)

// ErrSyntax matches every error about the file's contents.
var ErrSyntax = errors.New("auth tokens file")

// Token is one line of the file.
type Token struct {
	Name   string
	Scopes []string
	digest [sha256.Size]byte
}

// Has reports whether the token holds scope.
func (t Token) Has(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Parse reads a tokens file's contents. Blank lines and lines starting
// with # are skipped. Names and tokens must each be unique.
func Parse(data []byte) ([]Token, error) {
	var out []Token
	names := make(map[string]int)
	digests := make(map[[sha256.Size]byte]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%w: line %d: want NAME TOKEN [SCOPE...], got %d field(s)", ErrSyntax, n, len(fields))
		}
		t := Token{Name: fields[0], Scopes: fields[2:], digest: sha256.Sum256([]byte(fields[1]))}
		if len(fields[1]) < 16 {
			return nil, fmt.Errorf("%w: line %d: the token of %q has %d characters; want at least 16", ErrSyntax, n, t.Name, len(fields[1]))
		}
		if len(t.Scopes) == 0 {
			t.Scopes = []string{ScopeCall}
		}
		for _, s := range t.Scopes {
			if s != ScopeCall && s != ScopeAdmin {
				return nil, fmt.Errorf("%w: line %d: scope %q of %q: want %s or %s", ErrSyntax, n, s, t.Name, ScopeCall, ScopeAdmin)
			}
		}
		if prev, ok := names[t.Name]; ok {
			return nil, fmt.Errorf("%w: line %d: name %q is also on line %d", ErrSyntax, n, t.Name, prev)
		}
		if prev, ok := digests[t.digest]; ok {
			return nil, fmt.Errorf("%w: line %d: the token of %q is also on line %d", ErrSyntax, n, t.Name, prev)
		}
		names[t.Name], digests[t.digest] = n, n
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no tokens; a server with an empty file would refuse every call", ErrSyntax)
	}
	return out, nil
}

// File is the tokens of one file, safe for concurrent use; Reload reads
// the file again.
type File struct {
	path   string
	mu     sync.RWMutex
	tokens []Token
}

// Load reads the tokens file at path.
func Load(path string) (*File, error) {
	f := &File{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file again. On error the tokens read before stay.
func (f *File) Reload() error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	toks, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	f.mu.Lock()
	f.tokens = toks
	f.mu.Unlock()
	return nil
}

// Len is the number of tokens.
func (f *File) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.tokens)
}

// Lookup returns the token whose secret is secret. It compares digests in
// constant time and looks at every token, so the time taken says nothing
// about which token, or how much of one, matched.
func (f *File) Lookup(secret string) (Token, bool) {
	d := sha256.Sum256([]byte(secret))
	f.mu.RLock()
	defer f.mu.RUnlock()
	found := -1
	for i := range f.tokens {
		if subtle.ConstantTimeCompare(d[:], f.tokens[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return f.tokens[found], true
}
