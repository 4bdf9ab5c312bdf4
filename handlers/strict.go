package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// checkStrict refuses what encoding/json lets through but a JSON-only API with unknown
// fields refused must not take, each a way for two parsers to read one body differently:
// bytes that are not UTF-8 and \u escapes of unpaired surrogates (Go turns both into
// U+FFFD), a body that is not an object (null decodes to nothing), a field named twice
// (Go keeps the last), a field spelled in another case (Go matches names without regard
// to case), and null for a field (Go leaves it unset). data has decoded into v already,
// so it is one valid JSON value.
func checkStrict(data []byte, v any) error {
	if !utf8.Valid(data) || unpairedSurrogate(data) {
		return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: it is not valid UTF-8")
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: the body must be a JSON object")
	}
	fields := jsonFields(v)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the opening brace
		return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: the body must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: the body must be a JSON object")
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: the body must be a JSON object")
		}
		name := shortened(key)
		switch {
		case !fields[key]:
			return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: unknown field %q", name)
		case seen[key]:
			return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: field %q appears more than once", name)
		case string(value) == "null":
			return fail(http.StatusBadRequest, codeInvalidRequest, "invalid JSON body: field %q must not be null; leave it out instead", name)
		}
		seen[key] = true
	}
	return nil
}

// jsonFields lists the JSON names of the fields of the struct v points to.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "":
			out[f.Name] = true
		default:
			out[name] = true
		}
	}
	return out
}

// unpairedSurrogate reports whether a JSON text holds a \u escape of a UTF-16 surrogate
// that is not half of a pair. Backslashes occur only in strings of valid JSON.
func unpairedSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if i+1 >= len(data) || data[i+1] != 'u' {
			i++ // an escaped character, such as \\ or \"
			continue
		}
		r := hex4(data[i+2:])
		switch {
		case 0xD800 <= r && r < 0xDC00:
			if len(data) < i+12 || data[i+6] != '\\' || data[i+7] != 'u' {
				return true
			}
			if lo := hex4(data[i+8:]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// hex4 reads four hexadecimal digits; -1 when there are not four.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// shortened cuts a caller's value that a message repeats to at most 64 bytes.
func shortened(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// canonicalPath reports whether ServeMux serves an escaped path as it is: no ".", ".."
// or empty segment (a trailing slash aside). It answers any other path with a redirect to
// the cleaned one, which for a POST or PUT would aim the request at another resource.
// Escaped dots (%2E%2E) are a path value like any other and meet the value's validation.
func canonicalPath(path string) bool {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, s := range segs {
		if s == "." || s == ".." || s == "" && i < len(segs)-1 {
			return false
		}
	}
	return true
}
