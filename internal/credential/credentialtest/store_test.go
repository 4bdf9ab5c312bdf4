package credentialtest

import "testing"

// TestStoreContract holds the in-memory store to the contract the Table store passes.
func TestStoreContract(t *testing.T) {
	TestStore(t, func(t *testing.T, limits Limits) StoreUnderTest {
		s := NewStore(WithLimits(limits))
		return StoreUnderTest{Store: s, LoseAnswer: s.LoseAnswer, LoseAnswerThen: s.LoseAnswerThen}
	})
}
