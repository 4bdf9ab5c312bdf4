package stack

import (
	"context"
	"os"
	"strconv"
	"syscall"
)

// Azurite is the storage emulator of one stack: blob, queue and table over HTTPS with the
// local certificate and `--oauth basic` (which makes it take bearer tokens), serving the
// given accounts. It can be stopped and started again on the same ports and data.
type Azurite struct {
	Bin                string // Files.AzuriteBin
	DataDir            string
	Log                string
	CertFile, KeyFile  string
	Blob, Queue, Table int // ports
	Accounts           []Account

	proc *Process
}

// NewAzurite is the Azurite of a stack on ports, serving Accounts().
func NewAzurite(files Files, ports Ports, dataDir, log string) *Azurite {
	return &Azurite{Bin: files.AzuriteBin(), DataDir: dataDir, Log: log, CertFile: files.CertFile(), KeyFile: files.KeyFile(),
		Blob: ports.AzuriteBlob, Queue: ports.AzuriteQueue, Table: ports.AzuriteTable, Accounts: Accounts()}
}

// Endpoints are its service roots.
func (a *Azurite) Endpoints() Endpoints {
	return Endpoints{Blob: "https://" + Addr(a.Blob), Queue: "https://" + Addr(a.Queue), Table: "https://" + Addr(a.Table)}
}

// Start starts Azurite and waits until all three services accept connections.
func (a *Azurite) Start(ctx context.Context, l *Launcher) error {
	if err := os.MkdirAll(a.DataDir, 0o755); err != nil {
		return err
	}
	// --skipApiVersionCheck: the Go SDKs send API versions newer than Azurite knows.
	p, err := l.Start(Command{
		Name: "Azurite", Path: a.Bin, Log: a.Log,
		Env: []string{"AZURITE_ACCOUNTS=" + AzuriteAccounts(a.Accounts)},
		Args: []string{"--oauth", "basic", "--cert", a.CertFile, "--key", a.KeyFile,
			"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--location", a.DataDir,
			"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(a.Blob),
			"--queueHost", "127.0.0.1", "--queuePort", strconv.Itoa(a.Queue),
			"--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(a.Table)},
	})
	if err != nil {
		return err
	}
	a.proc = p
	if err := WaitPorts(ctx, p, a.Blob, a.Queue, a.Table); err != nil {
		p.Stop()
		return err
	}
	return nil
}

// Stop ends Azurite with sig (SIGTERM: it saves its data and closes; SIGKILL: nothing)
// and waits until it has.
func (a *Azurite) Stop(sig syscall.Signal) {
	if a.proc != nil {
		a.proc.StopWith(sig)
	}
}

// Process is the running Azurite, nil before Start.
func (a *Azurite) Process() *Process { return a.proc }

// Endpoints are the blob, queue and table service roots of a stack's storage, e.g.
// https://127.0.0.1:10000, without an account.
type Endpoints struct {
	Blob, Queue, Table string
}

// ConnectionString is a shared-key connection string for a with explicit path-style
// endpoints (the Go SDKs refuse UseDevelopmentStorage=true).
func (e Endpoints) ConnectionString(a Account) string {
	return "DefaultEndpointsProtocol=https;AccountName=" + a.Name + ";AccountKey=" + a.Key +
		";BlobEndpoint=" + e.Blob + "/" + a.Name + ";QueueEndpoint=" + e.Queue + "/" + a.Name +
		";TableEndpoint=" + e.Table + "/" + a.Name + ";"
}
