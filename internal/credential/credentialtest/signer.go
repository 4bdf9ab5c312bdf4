package credentialtest

import (
	"context"
	"slices"
	"sync"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Signer is a credential.Signer that records what it is asked and answers a fixed token
// for the account's public blob endpoint; Inject makes it fail.
type Signer struct {
	faults   faults
	mu       sync.Mutex
	requests []credential.SASRequest
}

var _ credential.Signer = (*Signer)(nil)

// Inject arms a Fault for ContainerSAS; the zero Fault disarms it.
func (s *Signer) Inject(f Fault) { s.faults.inject("ContainerSAS", f) }

// ContainerSAS records r and signs it.
func (s *Signer) ContainerSAS(ctx context.Context, r credential.SASRequest) (credential.SAS, error) {
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.mu.Unlock()
	if err := s.faults.take("ContainerSAS"); err != nil {
		return credential.SAS{}, err
	}
	return credential.SAS{AccountURL: "https://" + r.Account + ".blob.core.windows.net", Token: credential.Secret("sv=2025-01-05&sig=fake")}, nil
}

// Requests lists what the signer was asked, in order.
func (s *Signer) Requests() []credential.SASRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Last is the last request; it panics when there is none.
func (s *Signer) Last() credential.SASRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[len(s.requests)-1]
}

// Containers is a credential.ContainerCreator that records what it is asked ("account/
// container", in order); Inject makes it fail.
type Containers struct {
	faults faults
	mu     sync.Mutex
	asked  []string
}

var _ credential.ContainerCreator = (*Containers)(nil)

// Inject arms a Fault for EnsureContainer; the zero Fault disarms it.
func (c *Containers) Inject(f Fault) { c.faults.inject("EnsureContainer", f) }

// EnsureContainer records the container.
func (c *Containers) EnsureContainer(ctx context.Context, account, container string) error {
	c.mu.Lock()
	c.asked = append(c.asked, account+"/"+container)
	c.mu.Unlock()
	return c.faults.take("EnsureContainer")
}

// Asked lists the containers asked for, as "account/container", in order.
func (c *Containers) Asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.asked)
}
