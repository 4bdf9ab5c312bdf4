package credential

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// StorageTypeAzureFederated is the only storage type this backend manages.
const StorageTypeAzureFederated = "azure_federated"

// MaxNameLength bounds credential names; the app registration is named "deeplake-<name>".
const MaxNameLength = 64

// BasePath is a parsed az://<account>/<container>[/<prefix>] location.
type BasePath struct {
	Account   string
	Container string
	Prefix    string // without leading or trailing slash; may be empty
}

// String renders the canonical form of the base path.
func (b BasePath) String() string {
	s := "az://" + b.Account + "/" + b.Container
	if b.Prefix != "" {
		s += "/" + b.Prefix
	}
	return s
}

// invalid builds a ValidationError. A string argument longer than maxShown bytes is cut
// short in the message: enough to recognise the value, never a whole 64 KiB body echoed
// back to the caller and into the logs.
func invalid(field, format string, args ...any) *ValidationError {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = shown(s)
		}
	}
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// maxShown bounds how much of a refused value a validation message repeats.
const maxShown = 100

// shown is s cut after maxShown bytes, at a character boundary, with "…" appended.
func shown(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ValidateName checks a credential name: letters, digits, hyphens and underscores.
func ValidateName(name string) error { return validateName("name", name) }

// validateName checks a name in field by the rules of credential names, its messages
// naming the field: a workload identity's display_name follows them too.
func validateName(field, name string) error {
	if name == "" {
		return invalid(field, "%s is required", field)
	}
	if r, ok := firstRuneNotIn(name, isNameRune); ok {
		return invalid(field, "%s %q contains invalid character %q", field, name, string(r))
	}
	if len(name) > MaxNameLength {
		return invalid(field, "%s must be at most %d characters", field, MaxNameLength)
	}
	return nil
}

// ValidateStorageAccount applies Azure's storage account naming rules: 3 to 24 characters,
// lowercase letters and digits only.
func ValidateStorageAccount(field, account string) error {
	if account == "" {
		return invalid(field, "storage account is required")
	}
	if r, ok := firstRuneNotIn(account, isLowerAlnum); ok {
		return invalid(field, "storage account %q contains invalid character %q", account, string(r))
	}
	if n := len(account); n < 3 || n > 24 {
		return invalid(field, "storage account %q must be 3 to 24 characters long", account)
	}
	return nil
}

// ValidateContainer applies Azure's container naming rules: 3 to 63 characters, lowercase
// letters, digits and hyphens, starting and ending with a letter or digit, no consecutive
// hyphens. A slash gets its own message: it belongs to the prefix of the base path.
func ValidateContainer(field, container string) error {
	if container == "" {
		return invalid(field, "container name is required")
	}
	if strings.Contains(container, "/") {
		return invalid(field, "container %q contains a slash; slashes belong to the prefix of base_path (az://<account>/<container>/<prefix>), never the container name", container)
	}
	if r, ok := firstRuneNotIn(container, func(r rune) bool { return isLowerAlnum(r) || r == '-' }); ok {
		return invalid(field, "container %q contains invalid character %q", container, string(r))
	}
	if n := len(container); n < 3 || n > 63 {
		return invalid(field, "container %q must be 3 to 63 characters long", container)
	}
	if container[0] == '-' || container[len(container)-1] == '-' {
		return invalid(field, "container %q must start and end with a letter or digit", container)
	}
	if strings.Contains(container, "--") {
		return invalid(field, "container %q must not contain consecutive hyphens", container)
	}
	return nil
}

// maxPrefixLength leaves room under Azure's 1024-character blob name limit for the
// <org>/<workspace>/<table>/ path and the blob names below it.
const maxPrefixLength = 512

// ParseBasePath parses az://<account>/<container>[/<prefix>] and validates every part.
func ParseBasePath(raw string) (BasePath, error) {
	const field = "base_path"
	const shape = "az://<account>/<container>[/<prefix>]"
	if raw == "" {
		return BasePath{}, invalid(field, "base_path is required")
	}
	rest, ok := strings.CutPrefix(raw, "az://")
	if !ok {
		return BasePath{}, invalid(field, "base_path %q must start with az:// and look like %s", raw, shape)
	}
	account, rest, _ := strings.Cut(rest, "/")
	if account == "" {
		return BasePath{}, invalid(field, "base_path %q has no storage account; it must look like %s", raw, shape)
	}
	if err := ValidateStorageAccount(field, account); err != nil {
		return BasePath{}, err
	}
	container, prefix, _ := strings.Cut(rest, "/")
	if container == "" {
		return BasePath{}, invalid(field, "base_path %q has no container; it must look like %s", raw, shape)
	}
	if err := ValidateContainer(field, container); err != nil {
		return BasePath{}, err
	}
	// One trailing slash is allowed (az://a/c/p/); a prefix of only a slash is an empty
	// segment (az://a/c//), as it is anywhere else in the prefix.
	trimmed := strings.TrimSuffix(prefix, "/")
	if trimmed == "" && prefix != "" {
		return BasePath{}, invalid(field, "base_path prefix %q has an empty path segment", prefix)
	}
	if err := validatePrefix(trimmed); err != nil {
		return BasePath{}, err
	}
	return BasePath{Account: account, Container: container, Prefix: trimmed}, nil
}

func validatePrefix(prefix string) error {
	const field = "base_path"
	if prefix == "" {
		return nil
	}
	if !utf8.ValidString(prefix) {
		return invalid(field, "base_path prefix is not valid UTF-8")
	}
	if len(prefix) > maxPrefixLength {
		return invalid(field, "base_path prefix must be at most %d characters", maxPrefixLength)
	}
	for _, seg := range strings.Split(prefix, "/") {
		switch seg {
		case "":
			return invalid(field, "base_path prefix %q has an empty path segment", prefix)
		case ".", "..":
			return invalid(field, "base_path prefix %q must not contain %q segments", prefix, seg)
		}
	}
	// U+FFFD is what JSON decoding makes of invalid UTF-8 and lone surrogates: a prefix
	// holding it is a damaged value, and blobs would land under a path nobody typed.
	if r, ok := firstRuneNotIn(prefix, func(r rune) bool {
		return r != '\\' && r != utf8.RuneError && !unicode.IsControl(r)
	}); ok {
		return invalid(field, "base_path prefix %q contains invalid character %q", prefix, string(r))
	}
	return nil
}

// ValidateUUID checks that v is a UUID in the 8-4-4-4-12 form Azure shows for tenant and
// subscription ids. label is how the message names the value, e.g. "tenant_id".
func ValidateUUID(field, v string) error {
	if v == "" {
		return invalid(field, "%s is required", field)
	}
	if !isUUID(v) {
		return invalid(field, "%s %q is not a UUID (expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", field, v)
	}
	return nil
}

// ValidateResourceGroup applies Azure's resource group naming rules: 1 to 90 characters;
// letters, digits, underscores, hyphens, periods and parentheses; not ending in a period.
func ValidateResourceGroup(field, rg string) error {
	if rg == "" {
		return invalid(field, "resource group is required")
	}
	if r, ok := firstRuneNotIn(rg, func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-.()", r)
	}); ok {
		return invalid(field, "resource group %q contains invalid character %q", rg, string(r))
	}
	if n := utf8.RuneCountInString(rg); n > 90 {
		return invalid(field, "resource group %q must be 1 to 90 characters long", rg)
	}
	if strings.HasSuffix(rg, ".") {
		return invalid(field, "resource group %q must not end with a period", rg)
	}
	return nil
}

func isUUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func isLowerAlnum(r rune) bool { return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' }

func isNameRune(r rune) bool {
	return isLowerAlnum(r) || 'A' <= r && r <= 'Z' || r == '-' || r == '_'
}

func firstRuneNotIn(s string, ok func(rune) bool) (rune, bool) {
	for _, r := range s {
		if !ok(r) {
			return r, true
		}
	}
	return 0, false
}
