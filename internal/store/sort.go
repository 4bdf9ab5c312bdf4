package store

import (
	"cmp"
	"slices"

	"github.com/activeloopai/azcreds/internal/credential"
)

func sortByCreation(cs []*credential.Credential) {
	slices.SortStableFunc(cs, func(a, b *credential.Credential) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
