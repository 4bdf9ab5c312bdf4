package handlers

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// jsonOf is what encoding/json writes for v, as writeJSON writes it.
func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAppendCredsIsEncodingJSON: the /creds answer's hand-written encoding is byte for byte
// what encoding/json writes for credsView, whatever the strings hold.
func TestAppendCredsIsEncodingJSON(t *testing.T) {
	id := "3f1e2a4b-0c5d-4e6f-8a9b-0c1d2e3f4a5b"
	at := time.Date(2026, 3, 1, 12, 34, 56, 789000000, time.UTC)
	odd := "a\"b\\c\n\r\t\x00\x1f\x7f<>&\u2028\u2029é😀\xff\xfe"
	for _, v := range []credsView{
		{AccountURL: "https://acct.blob.core.windows.net", Container: "lake", PathPrefix: "org/ws/t1/", SASToken: "sv=2024-11-04&sr=c&sig=abc%2B%2F%3D",
			ContainerURL: "https://acct.blob.core.windows.net/lake", ExpiresAt: at, CredentialID: &id, Source: "credential"},
		{ExpiresAt: at.In(time.FixedZone("x", 3600)), Source: "environment_default"},
		{AccountURL: odd, Container: odd, PathPrefix: odd, SASToken: odd, ContainerURL: odd, ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), CredentialID: &odd, Source: odd},
		{},
	} {
		got, want := appendCreds(nil, &v), jsonOf(t, v)
		if !bytes.Equal(got, want) {
			t.Errorf("appendCreds:\n got %s\nwant %s", got, want)
		}
	}
}

// TestAppendJSONStringIsEncodingJSON checks the string encoding on every byte and on
// invalid and multi-byte UTF-8.
func TestAppendJSONStringIsEncodingJSON(t *testing.T) {
	var all []string
	for c := range 256 {
		all = append(all, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	for r := rune(0); r < 0x3000; r += 7 {
		all = append(all, string(r))
	}
	all = append(all, "\u2028\u2029", string(utf8.RuneError), "\xed\xa0\x80", "\xf4\x90\x80\x80", strings.Repeat("ab\"", 100))
	for _, s := range all {
		want := jsonOf(t, s)
		got := append(appendJSONString(nil, s), '\n')
		if !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("sv=2024&sig=a%2B")
	f.Add("a\"\\\n\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want := jsonOf(t, s)
		if got := append(appendJSONString(nil, s), '\n'); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
