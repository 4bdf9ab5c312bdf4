package faultproxy

import (
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// controlPrefix holds the proxy's own endpoints. Storage paths start with an account
// name (or, product-style, a table, queue or container name), none of which may contain
// '_', so no storage request can reach it.
const controlPrefix = "/_faultproxy/"

func isControlPath(path string) bool { return strings.HasPrefix(path, controlPrefix) }

// controlConfig is what GET and POST /_faultproxy/config answer: the rates per service and how
// long a timeout fault holds a request.
type controlConfig struct {
	Rates map[Service]Rates `json:"rates"`
	Hold  string            `json:"hold"`
}

// rateChange is the body of POST /_faultproxy/config: the new rates, for the services
// named (every service when none is).
type rateChange struct {
	Rates    Rates     `json:"rates"`
	Services []Service `json:"services,omitempty"`
}

func (p *Proxy) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlPrefix+"stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Stats())
	})
	mux.HandleFunc("POST "+controlPrefix+"reset", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Reset())
	})
	mux.HandleFunc("GET "+controlPrefix+"config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, controlConfig{Rates: p.Rates(), Hold: p.hold.String()})
	})
	mux.HandleFunc("POST "+controlPrefix+"config", func(w http.ResponseWriter, r *http.Request) {
		var c rateChange
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body: " + err.Error()})
			return
		}
		if err := p.SetRates(c.Rates, c.Services...); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, controlConfig{Rates: p.Rates(), Hold: p.hold.String()})
	})
	mux.HandleFunc(controlPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no control endpoint %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

// serverBusyMessage is Azure Storage's text for ServerBusy.
// https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
const serverBusyMessage = "The server is currently unable to receive requests. Please retry your request."

// writeServerBusy answers 503 ServerBusy as the service does: x-ms-error-code, a request
// id, and the body in the service's error format (JSON odata.error for Table, XML <Error>
// for Blob and Queue; none for HEAD).
func writeServerBusy(w http.ResponseWriter, r *http.Request, svc Service) {
	id := newRequestID()
	h := w.Header()
	h.Set("x-ms-error-code", "ServerBusy")
	h.Set("x-ms-request-id", id)
	if v := r.Header.Get("x-ms-version"); v != "" {
		h.Set("x-ms-version", v)
	}
	if c := r.Header.Get("x-ms-client-request-id"); c != "" {
		h.Set("x-ms-client-request-id", c)
	}
	message := fmt.Sprintf("%s\nRequestId:%s\nTime:%s", serverBusyMessage, id, time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"))
	var body []byte
	if svc == ServiceTable {
		h.Set("Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8")
		body, _ = json.Marshal(map[string]any{"odata.error": map[string]any{
			"code": "ServerBusy", "message": map[string]string{"lang": "en-US", "value": message}}})
	} else {
		h.Set("Content-Type", "application/xml")
		var b strings.Builder
		b.WriteString(xml.Header)
		b.WriteString("<Error><Code>ServerBusy</Code><Message>")
		_ = xml.EscapeText(&b, []byte(message))
		b.WriteString("</Message></Error>")
		body = []byte(b.String())
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(body)
}

// newRequestID is a random id in the GUID shape Azure Storage uses.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// writeEnqueued answers a Put Message as the Queue service does when it queued the
// message (201 with the message's id, pop receipt and times), for a message the proxy
// threw away.
func writeEnqueued(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("x-ms-request-id", newRequestID())
	if v := r.Header.Get("x-ms-version"); v != "" {
		h.Set("x-ms-version", v)
	}
	if c := r.Header.Get("x-ms-client-request-id"); c != "" {
		h.Set("x-ms-client-request-id", c)
	}
	now := time.Now().UTC()
	at := func(t time.Time) string { return t.Format(http.TimeFormat) }
	body := xml.Header + "<QueueMessagesList><QueueMessage><MessageId>" + newRequestID() + "</MessageId><InsertionTime>" + at(now) +
		"</InsertionTime><ExpirationTime>" + at(now.Add(7*24*time.Hour)) + "</ExpirationTime><PopReceipt>" + newRequestID() +
		"</PopReceipt><TimeNextVisible>" + at(now) + "</TimeNextVisible></QueueMessage></QueueMessagesList>"
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, body)
}
