package credential

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// orgHashOracle is the hash part of an organization's container name.
var orgHashOracle = regexp.MustCompile(`^[a-z2-7]{32}$`)

// orgIDPattern is what the API accepts as an organization id (handlers, orgPattern).
var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// TestOrgContainerName pins the scheme: changing it would orphan every organization's data
// in the platform's account. The expected names were computed outside Go, as
// `printf %s ORG | sha256sum | cut -c1-40 | xxd -r -p | base32 | tr A-Z a-z`.
func TestOrgContainerName(t *testing.T) {
	for _, tc := range []struct{ prefix, org, want string }{
		{"org-", "acme", "org-qivthlmhyfekbiqklot42xv4vjung2qy"},
		{"org-", "Acme", "org-g4bwzwhzorwtguby5sus7cttvzprxssh"}, // org ids are case-sensitive
		{"org-", "org-b", "org-zqlzz4mftzv7xpxnagkkrjrisl3i57md"},
		{"lake", strings.Repeat("a", 128), "lakena3m6e52yqaosecqohgwv5dqqtp2zlko"},
		{"", "acme", "qivthlmhyfekbiqklot42xv4vjung2qy"},
	} {
		if got := OrgContainerName(tc.prefix, tc.org); got != tc.want {
			t.Errorf("OrgContainerName(%q, %q) = %q, want %q", tc.prefix, tc.org, got, tc.want)
		}
	}
	if got := (EnvironmentDefault{Account: "platform", ContainerPrefix: "org-"}).OrgContainer("acme"); got != "org-qivthlmhyfekbiqklot42xv4vjung2qy" {
		t.Errorf("EnvironmentDefault.OrgContainer = %q", got)
	}
}

// TestOrgContainerNamesDistinct: organization ids that differ only where a container name
// could not tell them apart (case, dots, underscores, hyphens) get different containers.
func TestOrgContainerNamesDistinct(t *testing.T) {
	seen := map[string]string{}
	add := func(org string) {
		name := OrgContainerName(DefaultContainerPrefix, org)
		if other, dup := seen[name]; dup {
			t.Fatalf("organizations %q and %q share container %s", other, org, name)
		}
		seen[name] = org
	}
	for _, org := range []string{"acme", "Acme", "ACME", "ac.me", "ac_me", "ac-me", "acme.", "acme_", "acme-", "a.c.m.e"} {
		add(org)
	}
	for i := range 50_000 {
		add(fmt.Sprintf("org-%d", i))
	}
}

func TestValidateContainerPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"org-", true},
		{"", true},
		{"a", true},
		{"lake9", true},
		{"a-b-", true},
		{strings.Repeat("p", MaxContainerPrefixLength), true},
		{strings.Repeat("p", MaxContainerPrefixLength+1), false},
		{"-org", false},
		{"org--", false},
		{"Org-", false},
		{"org_", false},
		{"org.", false},
		{"org/", false},
		{"ørg", false},
	} {
		err := ValidateContainerPrefix("container_prefix", tc.prefix)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateContainerPrefix(%q) = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
		if err != nil {
			checkRefusal(t, err, "container_prefix", tc.prefix)
		}
	}
}

// FuzzOrgContainerName: for any prefix and organization id, the container name is valid by
// the domain's own container validator exactly when the prefix passes
// ValidateContainerPrefix; a valid name is the prefix and 32 base32 characters, the same
// every time. With an API-shaped organization id and the default prefix it is always valid.
func FuzzOrgContainerName(f *testing.F) {
	for _, s := range []struct{ prefix, org string }{
		{"org-", "acme"}, {"", "a"}, {"-", "acme"}, {"a--", "x"}, {"a-", "Org.With_Dots-And-Case"},
		{strings.Repeat("p", MaxContainerPrefixLength), strings.Repeat("Z", 128)},
		{strings.Repeat("p", MaxContainerPrefixLength+1), "x"}, {"ORG", "x"}, {"org\xff", "x"}, {"org", ""},
	} {
		f.Add(s.prefix, s.org)
	}
	f.Fuzz(func(t *testing.T, prefix, org string) {
		name := OrgContainerName(prefix, org)
		if again := OrgContainerName(prefix, org); again != name {
			t.Fatalf("%q %q: named %q, then %q", clip(prefix), clip(org), name, again)
		}
		hash, ok := strings.CutPrefix(name, prefix)
		if !ok || !orgHashOracle.MatchString(hash) {
			t.Fatalf("%q %q: name %q is not the prefix and 32 base32 characters", clip(prefix), clip(org), clip(name))
		}
		prefixErr := ValidateContainerPrefix("container_prefix", prefix)
		nameErr := ValidateContainer("container", name)
		if (prefixErr == nil) != (nameErr == nil) {
			t.Fatalf("prefix %q: ValidateContainerPrefix says %v, but the container name %q gets %v", clip(prefix), prefixErr, clip(name), nameErr)
		}
		if prefixErr != nil {
			checkRefusal(t, prefixErr, "container_prefix", prefix)
		}
		if orgIDPattern.MatchString(org) {
			if err := ValidateContainer("container", OrgContainerName(DefaultContainerPrefix, org)); err != nil {
				t.Fatalf("organization %q: default container name refused: %v", org, err)
			}
		}
	})
}

func TestEnvironmentDefaultValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		e     EnvironmentDefault
		field string // "" : accepted
	}{
		{"none configured", EnvironmentDefault{}, ""},
		{"configured", EnvironmentDefault{Account: "platformacct", ContainerPrefix: "org-"}, ""},
		{"bad account", EnvironmentDefault{Account: "Platform", ContainerPrefix: "org-"}, "account"},
		{"bad prefix", EnvironmentDefault{Account: "platformacct", ContainerPrefix: "Org_"}, "container_prefix"},
	} {
		err := tc.e.validate()
		var ve *ValidationError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
			t.Errorf("%s: got %v, want a validation error of %s", tc.name, err, tc.field)
		}
	}
}
