package udfcatalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

var (
	// ErrNotFound is matched by lookups of a name the registry does not hold.
	ErrNotFound = errors.New("function not found")
	// ErrDuplicate is returned when registering a name that is already taken.
	ErrDuplicate = errors.New("function already registered")
)

// NotFoundError names the missing function and the closest registered names.
type NotFoundError struct {
	Name        string
	Suggestions []string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("function %q not found", e.Name)
	if len(e.Suggestions) > 0 {
		quoted := make([]string, len(e.Suggestions))
		for i, s := range e.Suggestions {
			quoted[i] = fmt.Sprintf("%q", s)
		}
		msg += "; did you mean " + strings.Join(quoted, " or ") + "?"
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Registry holds UDF descriptors by name. It is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	byName map[string]*UDF
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: make(map[string]*UDF)}
}

// Register adds u. It fails if u is invalid or its name is taken.
func (r *Registry) Register(u *UDF) error {
	if err := u.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byName[u.Name]; ok {
		return fmt.Errorf("%w: %s (version %s)", ErrDuplicate, u.Name, old.Version)
	}
	r.byName[u.Name] = u
	return nil
}

// Replace removes the entries in old and adds those in add in one step, so
// lookups see either the old set or the new one. An entry of old that is
// no longer registered is skipped. It fails, changing nothing, if an entry
// of add is invalid, or its name is taken by an entry not in old, or two
// entries of add share a name.
func (r *Registry) Replace(old, add []*UDF) error {
	for _, u := range add {
		if err := u.Validate(); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	leaving := make(map[*UDF]bool, len(old))
	for _, u := range old {
		leaving[u] = true
	}
	adding := make(map[string]bool, len(add))
	for _, u := range add {
		if cur, ok := r.byName[u.Name]; (ok && !leaving[cur]) || adding[u.Name] {
			version := u.Version
			if ok {
				version = cur.Version
			}
			return fmt.Errorf("%w: %s (version %s)", ErrDuplicate, u.Name, version)
		}
		adding[u.Name] = true
	}
	for _, u := range old {
		if r.byName[u.Name] == u {
			delete(r.byName, u.Name)
		}
	}
	for _, u := range add {
		r.byName[u.Name] = u
	}
	return nil
}

// Lookup returns the UDF called name, or a *NotFoundError.
func (r *Registry) Lookup(name string) (*UDF, error) {
	r.mu.RLock()
	u, ok := r.byName[name]
	r.mu.RUnlock()
	if ok {
		return u, nil
	}
	return nil, &NotFoundError{Name: name, Suggestions: r.suggest(name)}
}

// List returns every UDF sorted by name.
func (r *Registry) List() []*UDF {
	r.mu.RLock()
	out := make([]*UDF, 0, len(r.byName))
	for _, u := range r.byName {
		out = append(out, u)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *UDF) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// maxSuggestions keeps not-found messages short.
const maxSuggestions = 3

// suggest returns registered names close to name: same name ignoring
// case, a prefix match, or a small edit distance.
func (r *Registry) suggest(name string) []string {
	type scored struct {
		name string
		dist int
	}
	if len(name) > maxNameLen {
		return nil
	}
	var cands []scored
	r.mu.RLock()
	for other := range r.byName {
		d := editDistance(strings.ToLower(name), strings.ToLower(other))
		limit := max(2, len(other)/3)
		if d <= limit || (len(name) >= 3 && strings.HasPrefix(other, name)) {
			cands = append(cands, scored{other, d})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(cands, func(a, b scored) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, 0, maxSuggestions)
	for _, c := range cands {
		if len(out) == maxSuggestions {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance over runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
