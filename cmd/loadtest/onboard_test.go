package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseOnboardFlags(t *testing.T) {
	required := []string{"-api", "http://127.0.0.1:7071", "-org", "load-org", "-control", "https://127.0.0.1:7443/control",
		"-tenant", "6069b94b-fef6-4670-9fb7-f7b155ce22d1", "-subscription", "0b1f6471-1bf0-4dda-aec3-cb9272f09590"}
	env := func(token string) func(string) string {
		return func(name string) string {
			if name == tokenEnv {
				return token
			}
			return ""
		}
	}
	o, err := parseOnboardFlags(append(required, "-n", "20", "-pid", "42"), io.Discard, env("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Credentials != 20 || o.cfg.Token != "tok" || o.pid != 42 || o.steadyC != 64 || o.steadyD != time.Minute ||
		o.cfg.Account != "custacct1" || o.cfg.Concurrency != 16 {
		t.Errorf("options %+v", o)
	}
	for _, c := range []struct {
		name  string
		args  []string
		token string
		want  string
	}{
		{"no token", required, "", tokenEnv},
		{"no api", required[2:], "tok", "required"},
		{"negative steady duration", append(required, "-steady-d", "-1s"), "tok", "-steady-d"},
		{"steady too long", append(required, "-steady-d", "11m"), "tok", "-steady-d"},
		{"negative pid", append(required, "-pid", "-1"), "tok", "-pid"},
		{"stray argument", append(required, "extra"), "tok", "unexpected"},
	} {
		_, err := parseOnboardFlags(c.args, io.Discard, env(c.token))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
}
