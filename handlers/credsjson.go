package handlers

import (
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

// The /creds answer is the one the SDK asks for on every table it opens, so it is encoded
// by hand, without reflection, into a pooled buffer: byte for byte what writeJSON would
// write for a credsView (TestAppendCredsIsEncodingJSON holds the two together).

var credsBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeCreds answers 200 with v, as writeJSON(w, http.StatusOK, v) would.
func writeCreds(w http.ResponseWriter, v *credsView) {
	bp := credsBuffers.Get().(*[]byte)
	b := appendCreds((*bp)[:0], v)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 16<<10 {
		*bp = b
		credsBuffers.Put(bp)
	}
}

// jsonContentType is writeJSON's Content-Type, shared (headers are only read once set).
var jsonContentType = []string{"application/json; charset=utf-8"}

// appendCreds appends v's JSON, with encoding/json's field order, names and newline.
func appendCreds(b []byte, v *credsView) []byte {
	b = append(b, `{"account_url":`...)
	b = appendJSONString(b, v.AccountURL)
	b = append(b, `,"container":`...)
	b = appendJSONString(b, v.Container)
	b = append(b, `,"path_prefix":`...)
	b = appendJSONString(b, v.PathPrefix)
	b = append(b, `,"sas_token":`...)
	b = appendJSONString(b, v.SASToken)
	b = append(b, `,"container_url":`...)
	b = appendJSONString(b, v.ContainerURL)
	b = append(b, `,"expires_at":"`...)
	b = v.ExpiresAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","credential_id":`...)
	if v.CredentialID == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *v.CredentialID)
	}
	b = append(b, `,"source":`...)
	b = appendJSONString(b, v.Source)
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does with HTML
// escaping off: quote and backslash escaped, control characters as \n, \r, \t, \b, \f or \u00XX,
// U+2028 and U+2029 escaped (JavaScript reads them as line ends), invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
