package credential

import (
	"context"
	"log/slog"
)

// ActorKind says what kind of caller acted.
type ActorKind string

// The kinds of actor an event can name.
const (
	// ActorUser is a platform user, who called with a platform token; Actor.ID is the
	// token's sub.
	ActorUser ActorKind = "user"
	// ActorWorkloadIdentity is a customer's workload identity (an Azure managed identity
	// registered with the organization), which called with its own Entra token; Actor.ID
	// is its registration's id.
	ActorWorkloadIdentity ActorKind = "workload_identity"
)

// Actor is who made a request: every event a request writes records it, so that each
// change can be traced to a user or a workload identity. The zero Actor is no one: the
// background jobs act for nobody, and events written before actors were recorded have
// none.
type Actor struct {
	Kind ActorKind
	// ID is the user's subject, or the workload identity's registration id.
	ID string
	// ClientID and TenantID name a workload identity's managed identity; empty for users.
	ClientID string
	TenantID string
}

// IsZero reports whether a names no one.
func (a Actor) IsZero() bool { return a == Actor{} }

// LogValue names the actor in log lines; an Actor holds no secret.
func (a Actor) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", string(a.Kind)), slog.String("id", a.ID)}
	if a.Kind == ActorWorkloadIdentity {
		attrs = append(attrs, slog.String("client_id", a.ClientID), slog.String("tenant_id", a.TenantID))
	}
	return slog.GroupValue(attrs...)
}

type actorKey struct{}

// WithActor returns ctx carrying a, the caller of the request ctx belongs to. The HTTP
// adapter sets it once the caller is known; every event the request's commands write
// records it. It travels in the context, as the deadline does, so that no command and no
// job type has to thread it through, and none can forget it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf is the actor ctx carries; the zero Actor when none.
func ActorOf(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}
