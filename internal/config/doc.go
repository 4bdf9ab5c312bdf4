// Package config reads the backend's settings the way the Azure Functions host does: the
// Values of local.settings.json when the file exists, then environment variables over
// them. Settings are parsed and validated once, into Config; nothing else reads the
// environment.
package config
