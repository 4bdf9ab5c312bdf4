package auth

// CachedTokens is the number of verified tokens a remembers.
func CachedTokens(a *Authenticator) int {
	if a.tokens == nil {
		return 0
	}
	return a.tokens.len()
}
