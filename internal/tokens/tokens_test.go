package tokens

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string // NAME:scope,scope per token
		err        string
	}{
		{"default scope", "alice 0123456789abcdef\n", []string{"alice:call"}, ""},
		{"scopes, comments and blanks", "# who may call\n\nalice 0123456789abcdef call\n  root fedcba9876543210 admin call  \n",
			[]string{"alice:call", "root:admin,call"}, ""},
		{"one field", "alice\n", nil, "line 1: want NAME TOKEN [SCOPE...], got 1 field(s)"},
		{"short token", "alice short\n", nil, `line 1: the token of "alice" has 5 characters; want at least 16`},
		{"unknown scope", "alice 0123456789abcdef root\n", nil, `line 1: scope "root" of "alice": want call or admin`},
		{"duplicate name", "a 0123456789abcdef\na fedcba9876543210\n", nil, `line 2: name "a" is also on line 1`},
		{"duplicate token", "a 0123456789abcdef\nb 0123456789abcdef\n", nil, `line 2: the token of "b" is also on line 1`},
		{"empty", "# nothing\n", nil, "no tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			toks, err := Parse([]byte(c.file))
			if c.err != "" {
				if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want ErrSyntax with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tok := range toks {
				got = append(got, tok.Name+":"+strings.Join(tok.Scopes, ","))
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestLookupAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("alice 0123456789abcdef\nroot fedcba9876543210 admin\n")
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := f.Lookup("fedcba9876543210"); !ok || tok.Name != "root" || !tok.Has(ScopeAdmin) || tok.Has(ScopeCall) {
		t.Errorf("root: %+v %v", tok, ok)
	}
	for _, secret := range []string{"", "0123456789abcde", "0123456789abcdef0", "alice"} {
		if tok, ok := f.Lookup(secret); ok {
			t.Errorf("Lookup(%q) = %+v, want no match", secret, tok)
		}
	}

	write("bob 1111111111111111\n")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Lookup("0123456789abcdef"); ok {
		t.Error("alice's token still valid after reload")
	}
	write("broken\n")
	if err := f.Reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	if tok, ok := f.Lookup("1111111111111111"); !ok || tok.Name != "bob" {
		t.Error("a failed reload dropped the tokens that were valid")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alice 0123456789abcdef call admin\n# c\n\nroot fedcba9876543210\n"))
	f.Add([]byte("a\x00b 0123456789abcdef\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not match ErrSyntax", err)
			}
			return
		}
		for _, tok := range toks {
			if tok.Name == "" || len(tok.Scopes) == 0 {
				t.Fatalf("token %+v has no name or no scope", tok)
			}
		}
	})
}
