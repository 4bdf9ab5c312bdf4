// Package walkthrough drives an onboarding from outside, over HTTP only: the platform's side
// through the credential API (what the onboarding wizard does) and the customer's side
// through the local stand-in's control endpoints (what a customer does with az). The
// walkthrough and the end-to-end tests use it; it imports no Azure SDK.
package walkthrough
