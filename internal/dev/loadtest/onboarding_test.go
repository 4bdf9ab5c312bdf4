package loadtest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestReadProcessUsage(t *testing.T) {
	// Burn a little CPU so the process has some to report.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	u, err := ReadProcessUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.PeakRSS <= 0 || u.RSS <= 0 || u.PeakRSS < u.RSS {
		t.Fatalf("usage %+v", u)
	}
	if _, err := ReadProcessUsage(1 << 30); err == nil {
		t.Fatal("usage of a process that does not exist")
	}
}

func TestDurationsOf(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := durationsOf(ds)
	want := Durations{N: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Fatalf("durationsOf = %+v, want %+v", got, want)
	}
	if (durationsOf(nil) != Durations{}) {
		t.Fatal("durations of nothing are not zero")
	}
}

func TestRunOnboardingRefuses(t *testing.T) {
	good := OnboardingConfig{APIURL: "http://127.0.0.1:1", ControlURL: "https://127.0.0.1:2/control", Org: "o", Token: "t",
		TenantID: "t", SubscriptionID: "s", ResourceGroup: "rg", Account: "a"}
	for _, c := range []struct {
		name string
		edit func(*OnboardingConfig)
		want error
	}{
		{"remote API", func(c *OnboardingConfig) { c.APIURL = "http://192.0.2.1:7071" }, ErrNotLoopback},
		{"remote control", func(c *OnboardingConfig) { c.ControlURL = "https://192.0.2.1/control" }, ErrNotLoopback},
		{"no token", func(c *OnboardingConfig) { c.Token = "" }, nil},
		{"too many", func(c *OnboardingConfig) { c.Credentials = OnboardingLimit + 1 }, nil},
		{"too long", func(c *OnboardingConfig) { c.Timeout = 2 * time.Hour }, nil},
		{"poll too fast", func(c *OnboardingConfig) { c.Poll = time.Millisecond }, nil},
	} {
		cfg := good
		c.edit(&cfg)
		_, err := RunOnboarding(context.Background(), cfg)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}
