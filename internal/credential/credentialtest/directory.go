package credentialtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Directory is an in-memory credential.Directory, the app registrations of the home
// tenant: CreateApp is an upsert by unique name, as Graph's is, so repeating it never
// makes a second app; deleting a missing app is success. Calls fail on demand (Inject:
// "CreateApp", "FindApp", "AddFederatedCredential", "DeleteApp").
type Directory struct {
	faults faults

	mu      sync.Mutex
	apps    map[string]credential.App // by object id
	unique  map[string]string         // object id by unique name
	fics    map[string][]credential.FederatedCredential
	specs   map[string]credential.AppSpec // by object id
	deleted []string
}

var _ credential.Directory = (*Directory)(nil)

// NewDirectory returns a directory without apps.
func NewDirectory() *Directory {
	return &Directory{apps: map[string]credential.App{}, unique: map[string]string{}, fics: map[string][]credential.FederatedCredential{},
		specs: map[string]credential.AppSpec{}}
}

// Inject arms a Fault for one method; the zero Fault disarms it.
func (d *Directory) Inject(call string, f Fault) { d.faults.inject(call, f) }

// CreateApp registers an app under spec's unique name, or returns the one registered
// there; it keeps spec for Spec.
func (d *Directory) CreateApp(ctx context.Context, spec credential.AppSpec) (credential.App, error) {
	if err := d.faults.take("CreateApp"); err != nil {
		return credential.App{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if app, ok := d.apps[d.unique[spec.UniqueName]]; ok {
		return app, nil
	}
	app := credential.App{ObjectID: uuid.NewString(), AppID: uuid.NewString()}
	d.apps[app.ObjectID] = app
	d.unique[spec.UniqueName] = app.ObjectID
	spec.RedirectURIs = slices.Clone(spec.RedirectURIs)
	d.specs[app.ObjectID] = spec
	return app, nil
}

// Spec returns what the app with objectID was created as.
func (d *Directory) Spec(objectID string) (credential.AppSpec, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	spec, ok := d.specs[objectID]
	return spec, ok
}

// FindApp returns the app registered under uniqueName.
func (d *Directory) FindApp(ctx context.Context, uniqueName string) (credential.App, bool, error) {
	if err := d.faults.take("FindApp"); err != nil {
		return credential.App{}, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	app, ok := d.apps[d.unique[uniqueName]]
	return app, ok, nil
}

// AddFederatedCredential adds fc to the app; a missing app is not found.
func (d *Directory) AddFederatedCredential(ctx context.Context, objectID string, fc credential.FederatedCredential) error {
	if err := d.faults.take("AddFederatedCredential"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.apps[objectID]; !ok {
		return fmt.Errorf("app %s: %w", objectID, credential.ErrNotFound)
	}
	d.fics[objectID] = append(d.fics[objectID], fc)
	return nil
}

// DeleteApp deletes an app and records that it was asked to.
func (d *Directory) DeleteApp(ctx context.Context, objectID string) error {
	if err := d.faults.take("DeleteApp"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted = append(d.deleted, objectID)
	delete(d.apps, objectID)
	delete(d.fics, objectID)
	delete(d.specs, objectID)
	for name, id := range d.unique {
		if id == objectID {
			delete(d.unique, name)
		}
	}
	return nil
}

// Apps is how many app registrations exist.
func (d *Directory) Apps() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.apps)
}

// AppByName returns the app registered under uniqueName.
func (d *Directory) AppByName(uniqueName string) (credential.App, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	app, ok := d.apps[d.unique[uniqueName]]
	return app, ok
}

// ObjectIDs lists the object ids of the apps that exist.
func (d *Directory) ObjectIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id := range d.apps {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// FederatedCredentials returns the federated credentials of every app, by object id.
func (d *Directory) FederatedCredentials() map[string][]credential.FederatedCredential {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string][]credential.FederatedCredential{}
	for id, fcs := range d.fics {
		out[id] = slices.Clone(fcs)
	}
	return out
}

// Deleted lists the object ids DeleteApp was called with, in order.
func (d *Directory) Deleted() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.deleted)
}
