package credential

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets below check properties of the validators, not only that they do not
// panic: a value is accepted exactly when an oracle written independently from Azure's
// naming rules accepts it, validating is deterministic, and a refusal is a
// *ValidationError naming the field with a short, printable message (the wizard shows it
// as it is, and it must never echo a 64 KiB body back).
//
// `make fuzz` runs each for FUZZTIME; `make test` for a few seconds. The seeds are the
// f.Add calls and testdata/fuzz/<FuzzName>/, which holds what fuzzing found.

// maxMessageBytes bounds a validation message, whatever the length of the value: long
// values are shortened in it (at most 100 bytes, each shown as up to 4 with %q).
const maxMessageBytes = 1024

var (
	nameOracle      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	accountOracle   = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerOracle = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	uuidOracle      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	pathNameOracle  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// clip keeps failure output readable for the fuzzer's long inputs.
func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// checkRefusal fails unless err is a *ValidationError for field with a usable message.
func checkRefusal(t *testing.T, err error, field, input string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%q: error %v (%T) is not a *ValidationError", clip(input), err, err)
	}
	if ve.Field != field {
		t.Fatalf("%q: error names field %q, want %q", clip(input), ve.Field, field)
	}
	if ve.Message == "" || !utf8.ValidString(ve.Message) || len(ve.Message) > maxMessageBytes {
		t.Fatalf("%q: message of %d bytes is empty, not UTF-8 or longer than %d: %q", clip(input), len(ve.Message), maxMessageBytes, clip(ve.Message))
	}
	for _, r := range ve.Message {
		if unicode.IsControl(r) {
			t.Fatalf("%q: message carries control character %U: %q", clip(input), r, clip(ve.Message))
		}
	}
}

// checkVerdict compares a validator's verdict with the oracle's and, when it refused,
// the shape of its error. validate is called twice: it must be deterministic.
func checkVerdict(t *testing.T, validate func(string) error, field, input string, want bool) {
	t.Helper()
	err := validate(input)
	if again := validate(input); (err == nil) != (again == nil) {
		t.Fatalf("%q: validated twice, got %v then %v", clip(input), err, again)
	}
	switch {
	case err == nil && !want:
		t.Fatalf("%q: accepted, but the naming rules refuse it", clip(input))
	case err != nil && want:
		t.Fatalf("%q: refused (%v), but the naming rules allow it", clip(input), err)
	case err != nil:
		checkRefusal(t, err, field, input)
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"prod-azure-bloblake", "A_b-9", "", "prod azure", "café", "x\x00y", "\xff",
		strings.Repeat("x", MaxNameLength), strings.Repeat("x", MaxNameLength+1), strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkVerdict(t, ValidateName, "name", s, nameOracle.MatchString(s))
	})
}

func FuzzValidateStorageAccount(f *testing.F) {
	for _, s := range []string{"bloblake", "abc", "ab", "Bloblake", "blob-lake", "", "a\xffb", strings.Repeat("z", 24),
		strings.Repeat("z", 25), "ｂｌｏｂ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		validate := func(v string) error { return ValidateStorageAccount("storage_account", v) }
		checkVerdict(t, validate, "storage_account", s, accountOracle.MatchString(s))
	})
}

func FuzzValidateContainer(f *testing.F) {
	for _, s := range []string{"lakedata", "a-b-c", "-lake", "lake-", "lake--data", "ab", "my/container", "",
		"LakeData", strings.Repeat("c", 63), strings.Repeat("c", 64), "lake\u2010data"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		validate := func(v string) error { return ValidateContainer("container_name", v) }
		want := containerOracle.MatchString(s) && len(s) >= 3 && len(s) <= 63
		checkVerdict(t, validate, "container_name", s, want)
	})
}

func FuzzValidateUUID(f *testing.F) {
	for _, s := range []string{"ceeafc3d-f026-420b-a75b-9df0c970e6d1", "CEEAFC3D-F026-420B-A75B-9DF0C970E6D1",
		"contoso.onmicrosoft.com", "", "ceeafc3df026420ba75b9df0c970e6d1", "{ceeafc3d-f026-420b-a75b-9df0c970e6d1}",
		"ceeafc3d-f026-420b-a75b-9df0c970e6d\u0661", strings.Repeat("f", 1<<12)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, field := range []string{"tenant_id", "subscription_id"} {
			validate := func(v string) error { return ValidateUUID(field, v) }
			checkVerdict(t, validate, field, s, uuidOracle.MatchString(s))
		}
	})
}

// resourceGroupOracle is Azure's rule for resource group names: 1 to 90 characters, each
// a letter or digit (Unicode) or one of _ - . ( ), not ending with a period.
func resourceGroupOracle(s string) bool {
	if !utf8.ValidString(s) || s == "" || utf8.RuneCountInString(s) > 90 || strings.HasSuffix(s, ".") {
		return false
	}
	for _, r := range s {
		if !unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lm, unicode.Lo, unicode.Nd) && !strings.ContainsRune("_-.()", r) {
			return false
		}
	}
	return true
}

func FuzzValidateResourceGroup(f *testing.F) {
	for _, s := range []string{"rg", "my-rg_1", "rg.(prod)", "grüne-gruppe", "rg.", "my rg", "rg/x", "", "\xc3",
		strings.Repeat("r", 90), strings.Repeat("r", 91), strings.Repeat("ü", 90), "rg\u0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		validate := func(v string) error { return ValidateResourceGroup("resource_group", v) }
		checkVerdict(t, validate, "resource_group", s, resourceGroupOracle(s))
	})
}

// FuzzValidatePathNames covers workspace ids and table names, which become row keys and
// segments of blob paths: ASCII letters, digits, '_', '-' and '.', never "..".
func FuzzValidatePathNames(f *testing.F) {
	for _, s := range []string{"ws-1", "a.b", "a..b", "..", ".", "a/b", "", "_x", "x.", "%2F", "wörk",
		strings.Repeat("w", 128), strings.Repeat("w", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := pathNameOracle.MatchString(s) && len(s) <= 128 && !strings.Contains(s, "..")
		checkVerdict(t, ValidateWorkspaceID, "workspace_id", s, want)
		checkVerdict(t, ValidateTableName, "table", s, want)
	})
}

// FuzzParseBasePath: whatever is accepted has valid parts, renders back to the input
// (less at most one trailing slash) and parses again to the same value.
func FuzzParseBasePath(f *testing.F) {
	for _, s := range []string{"az://bloblake/lakedata", "az://bloblake/lakedata/", "az://bloblake/lakedata/a/b/c/",
		"az://bloblake/lakedata/data", "s3://bloblake/lakedata", "az:///lakedata", "az://bloblake", "az://bloblake/",
		"az://Bloblake/lakedata", "az://bloblake/lake--data", "az://bloblake/lakedata//x", "az://bloblake/lakedata/a/../b",
		"az://bloblake/lakedata/a\\b", "az://bloblake/lakedata/a/./b", "az://bloblake/lakedata/ümlaut/日本",
		"az://bloblake/lakedata/a\x00b", "az://bloblake/lakedata/\xff", "AZ://bloblake/lakedata",
		"az://bloblake/lakedata/" + strings.Repeat("p", 512), "az://bloblake/lakedata/" + strings.Repeat("p", 513)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		bp, err := ParseBasePath(raw)
		if again, err2 := ParseBasePath(raw); again != bp || (err == nil) != (err2 == nil) {
			t.Fatalf("%q: parsed twice, got %+v, %v then %+v, %v", clip(raw), bp, err, again, err2)
		}
		if err != nil {
			checkRefusal(t, err, "base_path", raw)
			return
		}
		if err := ValidateStorageAccount("storage_account", bp.Account); err != nil {
			t.Fatalf("%q: accepted account %q: %v", clip(raw), bp.Account, err)
		}
		if err := ValidateContainer("container_name", bp.Container); err != nil {
			t.Fatalf("%q: accepted container %q: %v", clip(raw), bp.Container, err)
		}
		checkPrefix(t, raw, bp.Prefix)
		canonical := bp.String()
		if raw != canonical && raw != canonical+"/" {
			t.Fatalf("%q: accepted, but its canonical form is %q", clip(raw), clip(canonical))
		}
		again, err := ParseBasePath(canonical)
		if err != nil || again != bp {
			t.Fatalf("%q: canonical form %q parses to %+v, %v; want %+v", clip(raw), clip(canonical), again, err, bp)
		}
	})
}

// checkPrefix holds an accepted prefix to what blob names and the paths built on it need.
func checkPrefix(t *testing.T, raw, prefix string) {
	t.Helper()
	if prefix == "" {
		return
	}
	if !utf8.ValidString(prefix) || len(prefix) > maxPrefixLength {
		t.Fatalf("%q: accepted prefix %q is not UTF-8 or longer than %d bytes", clip(raw), clip(prefix), maxPrefixLength)
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			t.Fatalf("%q: accepted prefix %q has segment %q", clip(raw), clip(prefix), seg)
		}
	}
	for _, r := range prefix {
		if r == '\\' || unicode.IsControl(r) || r == utf8.RuneError {
			t.Fatalf("%q: accepted prefix %q has character %U", clip(raw), clip(prefix), r)
		}
	}
}
