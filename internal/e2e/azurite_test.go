package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/testenv"
)

// azurite is an Azurite of one test, started the way scripts/lib.sh starts the test
// Azurite (HTTPS with the local certificate, --oauth basic, the test accounts) but on
// ports of its own and with its data in a directory of the test, so that the test can
// stop it and start it again on the same ports and data.
type azurite struct {
	t     *testing.T
	bin   string
	dir   string
	ports [3]string // blob, queue, table
	args  []string
	env   []string
	log   *os.File
	cmd   *exec.Cmd
	done  chan struct{}
}

// startAzurite starts a private Azurite and returns it with the Env that reaches it.
func startAzurite(t *testing.T) (*azurite, testenv.Env) {
	t.Helper()
	env := testenv.Azurite(t) // the certificate and the accounts of the test Azurite
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	a := &azurite{t: t, bin: filepath.Join(root, "node_modules", ".bin", "azurite"), dir: t.TempDir()}
	if _, err := os.Stat(a.bin); err != nil {
		t.Fatalf("Azurite is not installed (make test installs it): %v", err)
	}
	for i := range a.ports {
		a.ports[i] = portOf(freeAddr(t))
	}
	accounts := os.Getenv("AZCREDS_TEST_AZURITE_ACCOUNTS")
	a.env = append(os.Environ(), "AZURITE_ACCOUNTS="+accounts)
	a.args = []string{"--oauth", "basic", "--cert", env.CertFile, "--key", filepath.Join(filepath.Dir(env.CertFile), "key.pem"),
		"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--location", filepath.Join(a.dir, "data"),
		"--blobHost", "127.0.0.1", "--blobPort", a.ports[0],
		"--queueHost", "127.0.0.1", "--queuePort", a.ports[1],
		"--tableHost", "127.0.0.1", "--tablePort", a.ports[2]}
	if a.log, err = os.Create(filepath.Join(a.dir, "azurite.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.stop(syscall.SIGTERM)
		a.log.Close()
	})
	a.start()
	env.BlobEndpoint = "https://127.0.0.1:" + a.ports[0]
	env.QueueEndpoint = "https://127.0.0.1:" + a.ports[1]
	env.TableEndpoint = "https://127.0.0.1:" + a.ports[2]
	env.ConnString = env.ConnectionString(testenv.DevAccount)
	return a, env
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// start runs Azurite on the ports and data it had, and waits until all three services
// accept connections.
func (a *azurite) start() {
	a.t.Helper()
	a.cmd = exec.Command(a.bin, a.args...)
	a.cmd.Env = a.env
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	done := make(chan struct{})
	a.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(a.cmd)
	// Node takes a few seconds to load Azurite, much longer on a busy machine.
	deadline := time.Now().Add(90 * time.Second)
	for _, port := range a.ports {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				a.t.Fatalf("Azurite exited during start; log:\n%s", a.tail())
			default:
			}
			if time.Now().After(deadline) {
				a.t.Fatalf("Azurite did not listen on %s within 90 s; log:\n%s", port, a.tail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// stop ends Azurite with sig (SIGTERM: it saves its data and closes; SIGKILL: nothing)
// and waits for it.
func (a *azurite) stop(sig syscall.Signal) {
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

func (a *azurite) tail() string {
	b, err := os.ReadFile(a.log.Name())
	if err != nil {
		return fmt.Sprint(err)
	}
	return string(tail(b, 4096))
}
