package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// moduleRoot is the directory of go.mod above the test's working directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// binding is one binding of a function.json.
type binding struct {
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	Name      string   `json:"name"`
	Route     string   `json:"route"`
	Methods   []string `json:"methods"`
	QueueName string   `json:"queueName"`
}

// function is one functions/<Name>/function.json of the repository.
type function struct {
	Name     string
	Bindings []binding `json:"bindings"`
}

// trigger returns the function's trigger binding.
func (f function) trigger(t testing.TB) binding {
	t.Helper()
	for _, b := range f.Bindings {
		if b.Direction == "in" && strings.HasSuffix(b.Type, "Trigger") {
			return b
		}
	}
	t.Fatalf("function %s has no trigger binding", f.Name)
	return binding{}
}

// repoFunctions reads every functions/<Name>/function.json, sorted by name.
func repoFunctions(t testing.TB, root string) []function {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var fns []function
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(root, "functions", e.Name(), "function.json"))
		if err != nil {
			t.Fatal(err)
		}
		f := function{Name: e.Name()}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("functions/%s/function.json: %v", e.Name(), err)
		}
		fns = append(fns, f)
	}
	if len(fns) == 0 {
		t.Fatal("no functions")
	}
	return fns
}

// bicepFile is one .bicep (or .bicepparam) file under infra/bicep.
type bicepFile struct {
	Path string // relative to the module root, slash-separated
	Src  string
	// code marks the bytes of Src that are code: not in a comment, not in a string
	// literal (but code again inside a string's ${...}); comment marks comment bytes.
	code, comment []bool
}

// bicepFiles reads and scans every .bicep and .bicepparam file under infra/bicep.
func bicepFiles(t testing.TB, root string) []bicepFile {
	t.Helper()
	var files []bicepFile
	err := filepath.WalkDir(filepath.Join(root, "infra", "bicep"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".bicep" && filepath.Ext(p) != ".bicepparam") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		code, comment, err := scanBicep(string(src))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		files = append(files, bicepFile{Path: filepath.ToSlash(rel), Src: string(src), code: code, comment: comment})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Bicep files under infra/bicep")
	}
	return files
}

// file returns the Bicep file at rel (relative to the module root).
func file(t testing.TB, files []bicepFile, rel string) bicepFile {
	t.Helper()
	for _, f := range files {
		if f.Path == rel {
			return f
		}
	}
	t.Fatalf("no %s", rel)
	return bicepFile{}
}

// scanBicep marks the code and comment bytes of a Bicep source and checks that its
// brackets pair up outside comments and strings: the one syntax check possible without a
// Bicep compiler. It knows line and block comments, '...' strings with backslash escapes
// and ${...} interpolation, and triple-quoted multi-line strings (no interpolation, no escapes).
func scanBicep(src string) (code, comment []bool, err error) {
	code = make([]bool, len(src))
	comment = make([]bool, len(src))
	type open struct {
		ch     byte
		at     int
		interp bool // the ${ of an interpolation: its } goes back into the string
	}
	var stack []open
	line := func(i int) int { return strings.Count(src[:i], "\n") + 1 }
	mark := func(m []bool, from, to int) {
		for j := from; j < to && j < len(m); j++ {
			m[j] = true
		}
	}
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch {
			case c == '\\':
				i++
			case c == '\'':
				inString = false
			case c == '$' && i+1 < len(src) && src[i+1] == '{':
				stack = append(stack, open{ch: '{', at: i, interp: true})
				inString = false
				i++
			}
			continue
		}
		switch {
		case strings.HasPrefix(src[i:], "//"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			mark(comment, i, i+end)
			i += end - 1
			continue
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, nil, fmt.Errorf("line %d: unterminated block comment", line(i))
			}
			mark(comment, i, i+end+4)
			i += end + 3
			continue
		case strings.HasPrefix(src[i:], "'''"):
			end := strings.Index(src[i+3:], "'''")
			if end < 0 {
				return nil, nil, fmt.Errorf("line %d: unterminated multi-line string", line(i))
			}
			i += end + 5
			continue
		case c == '\'':
			inString = true
			continue
		}
		code[i] = true
		switch c {
		case '(', '[', '{':
			stack = append(stack, open{ch: c, at: i})
		case ')', ']', '}':
			want := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1].ch != want {
				return nil, nil, fmt.Errorf("line %d: unmatched %q", line(i), c)
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if top.interp {
				code[i] = false
				inString = true
			}
		}
	}
	if inString {
		return nil, nil, fmt.Errorf("unterminated string")
	}
	if len(stack) > 0 {
		top := stack[len(stack)-1]
		return nil, nil, fmt.Errorf("line %d: %q is never closed", line(top.at), top.ch)
	}
	return code, comment, nil
}

// codeOnly returns the file with comments blanked out (strings kept), for regexps that
// must not match commented-out text.
func (f bicepFile) codeOnly() string {
	b := []byte(f.Src)
	for i := range b {
		if f.comment[i] && b[i] != '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// matching returns the index of the bracket that closes the one at open, counting code
// bytes only.
func (f bicepFile) matching(t testing.TB, openAt int) int {
	t.Helper()
	pairs := map[byte]byte{'(': ')', '[': ']', '{': '}'}
	want, ok := pairs[f.Src[openAt]]
	if !ok || !f.code[openAt] {
		t.Fatalf("%s: no bracket at %d", f.Path, openAt)
	}
	depth := 0
	for i := openAt; i < len(f.Src); i++ {
		if !f.code[i] {
			continue
		}
		switch f.Src[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				if f.Src[i] != want {
					t.Fatalf("%s: bracket at %d closed by %q", f.Path, openAt, f.Src[i])
				}
				return i
			}
		}
	}
	t.Fatalf("%s: bracket at %d never closed", f.Path, openAt)
	return -1
}

// block returns the text of the bracketed block that starts at the first code bracket
// at or after from.
func (f bicepFile) block(t testing.TB, from int) string {
	t.Helper()
	for i := from; i < len(f.Src); i++ {
		if f.code[i] && strings.IndexByte("([{", f.Src[i]) >= 0 {
			return f.Src[i : f.matching(t, i)+1]
		}
	}
	t.Fatalf("%s: no block after %d", f.Path, from)
	return ""
}

var (
	quoted      = regexp.MustCompile(`'([^'\\$]*)'`)
	settingName = regexp.MustCompile(`(?m)^\s*name:\s*'([^']+)'`)
)

// appSettings returns the names of every appSettings entry in the Bicep files, in order.
func appSettings(t testing.TB, files []bicepFile) []string {
	t.Helper()
	var names []string
	key := regexp.MustCompile(`\bappSettings\s*:`)
	for _, f := range files {
		src := f.codeOnly()
		for _, m := range key.FindAllStringIndex(src, -1) {
			if !f.code[m[0]] {
				continue
			}
			for _, n := range settingName.FindAllStringSubmatch(f.block(t, m[1]), -1) {
				names = append(names, n[1])
			}
		}
	}
	return names
}

// stringList returns the string items of the array assigned by `var <name> = [...]` in f.
func stringList(t testing.TB, f bicepFile, name string) []string {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^var\s+` + regexp.QuoteMeta(name) + `\s*=`).FindStringIndex(f.codeOnly())
	if decl == nil {
		t.Fatalf("%s: no var %s", f.Path, name)
	}
	var items []string
	for _, m := range quoted.FindAllStringSubmatch(f.block(t, decl[1]), -1) {
		items = append(items, m[1])
	}
	return items
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
