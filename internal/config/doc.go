// Package config reads the backend's settings the way the Azure Functions host does: the
// Values of local.settings.json when the file exists, then environment variables over
// them (Lookup). Settings are parsed and validated once, into Config (serve) or Minting
// (`handler token`); nothing else reads the environment. A setting's default is defined
// once: the background work's windows and intervals are the domain's constants
// (internal/credential), the rest are here.
//
// Azure mode is the default: the handler runs only under the Functions host, the Microsoft
// endpoints it sends the managed identity's assertion and tokens to must be one known
// Azure cloud's (Clouds), and the local-only settings (LocalOnly) are refused. Only
// AZCREDS_LOCAL_STACK=true, which the Functions host refuses, allows the local stack's
// endpoints and settings.
package config
