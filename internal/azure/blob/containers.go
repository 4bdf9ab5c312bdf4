package blob

// This file creates the environment default's containers: one per organization in the
// platform's own account, created at the organization's first SAS by the backend's
// managed identity (Storage Blob Data Contributor on the account allows
// Microsoft.Storage/storageAccounts/blobServices/containers/write). See
// https://learn.microsoft.com/rest/api/storageservices/create-container.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/singleflight"

	"github.com/activeloopai/azcreds/internal/credential"
)

// DefaultMaxKnownContainers bounds how many existing containers Containers remembers (a
// few dozen bytes each). Past it, one is forgotten at random: its next SAS asks Storage
// once more, which answers that the container exists.
const DefaultMaxKnownContainers = 100_000

// ContainersOptions configure Containers. The zero value reaches Azure's public cloud.
type ContainersOptions struct {
	// EndpointTemplate is the account's blob endpoint with %s for the account name, as in
	// Options; DefaultEndpointTemplate when empty.
	EndpointTemplate string
	// Transport sends the requests; azcore's default when nil.
	Transport policy.Transporter
	// MaxKnown bounds the remembered containers; DefaultMaxKnownContainers when zero.
	MaxKnown int
	// Logger receives one line per container created. Discarded when nil.
	Logger *slog.Logger
}

// Containers creates containers of the platform's own account as the platform identity,
// unless they exist. It remembers each container it created or found, so a warm call
// costs no round trip, and runs one creation at a time per container: concurrent first
// calls wait for the same request. It is safe for concurrent use.
type Containers struct {
	platform azcore.TokenCredential
	template string
	client   container.ClientOptions
	max      int
	log      *slog.Logger

	flights singleflight.Group
	mu      sync.Mutex
	known   map[string]struct{} // "account/container"
}

var _ credential.ContainerCreator = (*Containers)(nil)

// NewContainers validates opts and returns Containers that sign in as platform.
func NewContainers(platform azcore.TokenCredential, opts ContainersOptions) (*Containers, error) {
	if platform == nil {
		return nil, errors.New("blob containers: no platform identity")
	}
	c := &Containers{platform: platform, template: opts.EndpointTemplate, max: opts.MaxKnown, log: opts.Logger,
		known: map[string]struct{}{}}
	if c.template == "" {
		c.template = DefaultEndpointTemplate
	}
	if err := ValidateEndpointTemplate(c.template); err != nil {
		return nil, fmt.Errorf("blob containers: %w", err)
	}
	if c.max < 0 {
		return nil, fmt.Errorf("blob containers: MaxKnown %d is negative", c.max)
	}
	if c.max == 0 {
		c.max = DefaultMaxKnownContainers
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	// A /creds request is waiting, as for the signer.
	c.client = container.ClientOptions{ClientOptions: clientOptions(opts.Transport, 5*time.Second).ClientOptions}
	return c, nil
}

// EnsureContainer creates account's container unless it is known to exist. A container
// that already exists (409 ContainerAlreadyExists) is success. A caller whose context ends
// stops waiting; the creation goes on for the others.
//
// Errors wrap a *credential.ProviderError where Storage said something: its code, status
// and request id, Kind credential.ErrUnavailable for 408, 429, 5xx, timeouts and a
// container still being deleted.
func (c *Containers) EnsureContainer(ctx context.Context, account, name string) error {
	if err := credential.ValidateStorageAccount("account", account); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if err := credential.ValidateContainer("container", name); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	key := strings.ToLower(account) + "/" + name
	if c.isKnown(key) {
		return nil
	}
	ch := c.flights.DoChan(key, func() (any, error) {
		if c.isKnown(key) {
			return nil, nil // a flight that ended between the check above and this one
		}
		if err := c.create(context.WithoutCancel(ctx), account, name); err != nil {
			return nil, err
		}
		c.remember(key)
		return nil, nil
	})
	select {
	case <-ctx.Done():
		return ctx.Err()
	case res := <-ch:
		return res.Err
	}
}

// create sends Create Container, private, as the platform identity.
func (c *Containers) create(ctx context.Context, account, name string) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	url := strings.TrimRight(fmt.Sprintf(c.template, account), "/") + "/" + name
	client, err := container.NewClient(url, c.platform, &c.client)
	if err != nil {
		return fmt.Errorf("container client: %w", err)
	}
	_, err = client.Create(ctx, nil)
	switch {
	case err == nil:
		c.log.InfoContext(ctx, "created the environment default container of an organization", "account", account, "container", name)
		return nil
	case bloberror.HasCode(err, bloberror.ContainerAlreadyExists):
		return nil
	}
	err = classify(ctx, err)
	var pe *credential.ProviderError
	if bloberror.HasCode(err, bloberror.ContainerBeingDeleted) && errors.As(err, &pe) {
		pe.Kind = credential.ErrUnavailable // Storage finishes the delete; a later create works
	}
	return fmt.Errorf("create container %s/%s as the platform identity: %w", account, name, err)
}

func (c *Containers) isKnown(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.known[key]
	return ok
}

// remember records key as existing, forgetting an arbitrary other one past the bound.
func (c *Containers) remember(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for other := range c.known {
		if len(c.known) < c.max {
			break
		}
		delete(c.known, other)
	}
	c.known[key] = struct{}{}
}

// knownCount is how many containers are remembered, for tests.
func (c *Containers) knownCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.known)
}
