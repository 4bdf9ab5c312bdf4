package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// EntraConfig configures an [EntraVerifier]: the Entra ID v2.0 access tokens, issued for
// the platform API to customers' managed identities, that it accepts.
type EntraConfig struct {
	// Audience is the client id of the platform API's app registration, a GUID: the aud of
	// every v2.0 token Entra issues for the API. Required.
	Audience string
	// IssuerAuthority is the authority Entra names in the iss of its v2.0 tokens in the
	// configured cloud, with the trailing slash (https://login.microsoftonline.com/): a
	// token's iss must be IssuerAuthority + its tid + "/v2.0". Required.
	IssuerAuthority string
	// KeysURL is where Entra publishes its tenant-independent v2.0 signing keys,
	// <authority>common/discovery/v2.0/keys. It must be https, or http on a loopback host.
	// Required.
	KeysURL string
	// Leeway absorbs clock skew on exp, nbf and iat. Zero means DefaultLeeway; at most
	// five minutes.
	Leeway time.Duration
	// KeysRefreshInterval is the least time between two fetches of the keys, however many
	// tokens with unknown kids arrive. Zero means DefaultJWKSRefreshInterval.
	KeysRefreshInterval time.Duration
	// HTTPClient fetches the keys; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// EntraVerifier checks the Entra ID v2.0 access tokens that customers' workload identities
// (managed identities) obtain for the platform API, following Microsoft's rules for a
// multi-tenant API (https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens):
// RS256 signed by a key Entra publishes, aud the API's client id, ver 2.0, iss the
// configured cloud's issuer for the token's own tid (a GUID), and valid times. It is safe
// for concurrent use.
//
// It establishes who the caller is, never what it may do: whether a [Workload] may act for
// an organization is for the registry of that organization's workload identities to say.
type EntraVerifier struct {
	audience  string
	authority string
	keys      *jwksCache
	parser    *jwt.Parser
	validator *jwt.Validator
	now       func() time.Time
	leeway    time.Duration
}

// NewEntraVerifier validates cfg once and returns a verifier. It does no I/O: the keys are
// fetched by the first verification that needs them.
func NewEntraVerifier(cfg EntraConfig) (*EntraVerifier, error) {
	if !isGUID(cfg.Audience) {
		return nil, errors.New("entra config: audience must be the API app's client id, a lower-case GUID")
	}
	if err := checkAuthority(cfg.IssuerAuthority); err != nil {
		return nil, fmt.Errorf("entra config: issuer authority: %w", err)
	}
	if err := checkJWKSURL(cfg.KeysURL); err != nil {
		return nil, fmt.Errorf("entra config: keys URL: %w", err)
	}
	leeway, err := leewayOf(cfg.Leeway)
	if err != nil {
		return nil, fmt.Errorf("entra config: %w", err)
	}
	interval := cfg.KeysRefreshInterval
	switch {
	case interval == 0:
		interval = DefaultJWKSRefreshInterval
	case interval < 0:
		return nil, fmt.Errorf("entra config: negative keys refresh interval %v", interval)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	return &EntraVerifier{
		audience:  cfg.Audience,
		authority: cfg.IssuerAuthority,
		now:       now,
		leeway:    leeway,
		keys:      &jwksCache{url: cfg.KeysURL, client: client, now: now, minInterval: interval},
		// RS256 only: refuses alg "none", HS256 keyed with a public key, and every other
		// algorithm (Entra signs access tokens with RS256). The claims are checked below,
		// after the signature, in an order that names the most useful cause.
		parser: jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation()),
		validator: jwt.NewValidator(
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(now),
		),
	}, nil
}

// checkAuthority wants an absolute https URL ending in a slash (http on loopback, for the
// local stand-in), so that authority + tid + "/v2.0" is an issuer.
func checkAuthority(raw string) error {
	if !strings.HasSuffix(raw, "/") {
		return errors.New("must end with a slash")
	}
	if err := checkJWKSURL(raw); err != nil {
		return errors.New("must be an https URL (http only on loopback)")
	}
	return nil
}

// entraClaims are the claims of an Entra access token that the verifier reads.
// https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference
type entraClaims struct {
	jwt.RegisteredClaims
	Version string `json:"ver"`
	// TenantID is the tenant that issued the token: the customer's.
	TenantID string `json:"tid"`
	// AuthorizedParty is the client id of the caller in v2.0 tokens; v1.0 tokens carry it
	// as appid, but v1.0 tokens are refused.
	AuthorizedParty string `json:"azp"`
	ObjectID        string `json:"oid"`
	// Scopes is set only in delegated (user) tokens: a managed identity's token is an app
	// token and carries roles, if anything, instead.
	Scopes *string `json:"scp"`
	// IdentityType, an optional claim, is "app" for app tokens.
	IdentityType string `json:"idtyp"`
}

// entraV2 is the ver claim of Entra's v2.0 access tokens, the only version accepted: the
// API's app registration asks for v2.0 tokens (api.requestedAccessTokenVersion 2), so a
// v1.0 token was issued for something else.
const entraV2 = "2.0"

// Verify checks raw (the bearer token, without the "Bearer " prefix) and returns the
// workload identity it speaks for. Every refusal matches ErrUnauthenticated; its cause
// starts "entra token: " and never quotes the token. ctx bounds a key fetch the call may
// have to wait for.
func (v *EntraVerifier) Verify(ctx context.Context, raw string) (Workload, error) {
	w, _, err := v.verify(ctx, raw)
	return w, err
}

// keysVersion is the version of Entra's keys, as [Verifier.keysVersion] describes.
func (v *EntraVerifier) keysVersion(now time.Time) (uint64, bool) { return v.keys.version(now) }

// verify is Verify that also says when the token is valid, for the cache of verified
// tokens.
func (v *EntraVerifier) verify(ctx context.Context, raw string) (Workload, validity, error) {
	if raw == "" {
		return Workload{}, validity{}, refuseEntra("missing token", nil)
	}
	if len(raw) > maxTokenBytes {
		return Workload{}, validity{}, refuseEntra("token too large", nil)
	}
	var c entraClaims
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		return keyOf(ctx, v.keys, t)
	})
	if err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			return Workload{}, validity{}, refuseEntra(ke.cause, ke.err)
		}
		return Workload{}, validity{}, refuseEntra(jwtCause(err), nil)
	}
	// Signed by Entra from here on: the claims are Entra's.
	if err := v.checkClaims(&c); err != nil {
		return Workload{}, validity{}, err
	}
	w := Workload{TenantID: c.TenantID, ClientID: c.AuthorizedParty, ObjectID: c.ObjectID}
	return w, validityOf(&c.RegisteredClaims, v.leeway), nil
}

// checkClaims checks a signed token's claims, the version first (a v1.0 token fails the
// issuer check too, but "v1.0" says why), then the issuer for its tenant, the audience and
// times, and last who the caller is.
func (v *EntraVerifier) checkClaims(c *entraClaims) error {
	switch c.Version {
	case entraV2:
	case "1.0":
		return refuseEntra("v1.0 token: the API accepts only v2.0 tokens", nil)
	case "":
		return refuseEntra("missing ver", nil)
	default:
		return refuseEntra("unsupported token version", nil)
	}
	// tid is the trust boundary and picks the issuer: it must be a GUID, and the issuer
	// must be this cloud's for exactly that tenant.
	// https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-issuer
	if !isGUID(c.TenantID) {
		return refuseEntra("tid is not a GUID", nil)
	}
	if c.Issuer != v.authority+c.TenantID+"/v2.0" {
		return refuseEntra("wrong issuer", nil)
	}
	if err := v.validator.Validate(c); err != nil {
		if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
			if c.ExpiresAt == nil {
				return refuseEntra("missing exp", nil)
			}
			return refuseEntra("missing aud", nil)
		}
		return refuseEntra(jwtCause(err), nil)
	}
	if c.Scopes != nil || (c.IdentityType != "" && c.IdentityType != "app") {
		return refuseEntra("delegated (user) token: a workload identity signs in with an app token", nil)
	}
	if !isGUID(c.AuthorizedParty) {
		return refuseEntra("azp is not a GUID", nil)
	}
	if !isGUID(c.ObjectID) {
		return refuseEntra("oid is not a GUID", nil)
	}
	return nil
}

// guidPattern is a GUID as Entra writes ids into tokens: 8-4-4-4-12 lower-case hex. Other
// spellings uuid.Parse accepts (braces, urn:uuid:, no hyphens) never come from Entra.
var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isGUID(s string) bool { return guidPattern.MatchString(s) }

// refuseEntra is a refusal of an Entra token; the prefix tells the two kinds apart in logs.
func refuseEntra(cause string, err error) error { return refuse("entra token: "+cause, err) }
