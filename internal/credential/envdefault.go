package credential

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// The environment default gives every organization a container of its own in the
// platform's storage account: a SAS is container-scoped, so a container shared by all
// organizations would let each read and delete the others' data. The container is named
// <prefix><hash>, where hash is the first 160 bits of SHA-256 of the organization id in
// lowercase base32 (RFC 4648 alphabet, no padding): 32 characters of a-z and 2-7, valid in
// a container name whatever the org id holds (up to 128 characters, mixed case, dots and
// underscores, none of which a container name allows). docs/STORAGE.md gives the
// collision bound and why a collision cannot be arranged.

// DefaultContainerPrefix starts the name of every environment-default container unless a
// deployment chooses another prefix.
const DefaultContainerPrefix = "org-"

// OrgContainerHashLength is the length of the hash part of an organization's container
// name: 160 bits in base32, 5 bits a character.
const OrgContainerHashLength = 32

// MaxContainerPrefixLength leaves room for the hash under Azure's 63-character limit.
const MaxContainerPrefixLength = 63 - OrgContainerHashLength

// orgContainerEncoding is base32 in lowercase, so every character is a letter or a digit.
var orgContainerEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// OrgContainerName is organization orgID's container in the platform's account: prefix
// followed by the organization's hash. It is a valid container name for every orgID
// exactly when prefix passes ValidateContainerPrefix.
func OrgContainerName(prefix, orgID string) string {
	sum := sha256.Sum256([]byte(orgID))
	return prefix + orgContainerEncoding.EncodeToString(sum[:OrgContainerHashLength*5/8])
}

// ValidateContainerPrefix checks a prefix of environment-default container names: at most
// MaxContainerPrefixLength lowercase letters, digits and hyphens, not starting with a
// hyphen, no consecutive hyphens. It may end with a hyphen (the hash follows) or be empty.
func ValidateContainerPrefix(field, prefix string) error {
	if r, ok := firstRuneNotIn(prefix, func(r rune) bool { return isLowerAlnum(r) || r == '-' }); ok {
		return invalid(field, "container prefix %q contains invalid character %q: lowercase letters, digits and hyphens only", prefix, string(r))
	}
	if len(prefix) > MaxContainerPrefixLength {
		return invalid(field, "container prefix %q is longer than %d characters: with the %d-character organization hash the container name would pass Azure's 63", prefix, MaxContainerPrefixLength, OrgContainerHashLength)
	}
	if strings.HasPrefix(prefix, "-") {
		return invalid(field, "container prefix %q must start with a lowercase letter or digit", prefix)
	}
	if strings.Contains(prefix, "--") {
		return invalid(field, "container prefix %q must not contain consecutive hyphens", prefix)
	}
	return nil
}

// validate checks a configured environment default: its account and its container prefix.
func (e EnvironmentDefault) validate() error {
	if !e.Configured() {
		return nil
	}
	if err := ValidateStorageAccount("account", e.Account); err != nil {
		return err
	}
	return ValidateContainerPrefix("container_prefix", e.ContainerPrefix)
}
