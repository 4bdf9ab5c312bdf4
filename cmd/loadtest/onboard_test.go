package main

import (
	"io"
	"slices"
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
		o.cfg.Account != "custacct1" || o.cfg.Concurrency != 16 || !slices.Equal(o.credsC, []int{64}) || o.cfg.Poll != 3*time.Second {
		t.Errorf("options %+v", o)
	}
	o, err = parseOnboardFlags(append(required, "-creds-c", "1,16,64", "-steady-c", "32",
		"-profile-url", "http://127.0.0.1:6060/debug/pprof/profile", "-profile-out", "cpu.pprof"), io.Discard, env("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.credsC, []int{1, 16, 64}) || o.steadyC != 32 || o.profileOut != "cpu.pprof" {
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
		{"bad levels", append(required, "-creds-c", "1,x"), "tok", "-creds-c"},
		{"zero level", append(required, "-creds-c", "0"), "tok", "-creds-c"},
		{"profile without a file", append(required, "-profile-url", "http://127.0.0.1:6060/debug/pprof/profile"), "tok", "-profile-out"},
		{"profile without scenario 2", append(required, "-steady-d", "0", "-profile-url", "http://127.0.0.1:1/p", "-profile-out", "f"), "tok", "scenario 2"},
	} {
		_, err := parseOnboardFlags(c.args, io.Discard, env(c.token))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
}
