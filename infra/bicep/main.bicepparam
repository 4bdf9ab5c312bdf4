// main.bicepparam: the values of one deployment. `make deploy` passes them through the
// environment (its make variables of the same names); edit the defaults here instead if
// you deploy with `az deployment group create` yourself. Every other parameter of
// main.bicep has a default that suits production.
using 'main.bicep'

param appName = readEnvironmentVariable('APP_NAME', 'azcreds')

// The platform identity provider that issues the API's bearer tokens.
param authIssuer = readEnvironmentVariable('AUTH_ISSUER', '')
param authAudience = readEnvironmentVariable('AUTH_AUDIENCE', '')
param authJwksUrl = readEnvironmentVariable('AUTH_JWKS_URL', '')

// false when the deploying principal cannot grant Microsoft Graph application permissions
// (not a Privileged Role Administrator); an administrator grants it afterwards.
param grantGraphPermission = bool(readEnvironmentVariable('GRANT_GRAPH_PERMISSION', 'true'))
