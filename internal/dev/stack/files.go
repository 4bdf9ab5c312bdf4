package stack

import (
	"errors"
	"os"
	"path/filepath"
)

// Files are where the local stack keeps what it generates, all under .local/ in the
// module root (`make clean` removes it), and where it finds Azurite.
type Files struct {
	Root string // the module root
}

// Local is the directory of everything generated: certificates, keys, data and logs.
func (f Files) Local() string { return filepath.Join(f.Root, ".local") }

// CertFile and KeyFile are the TLS certificate and key that Azurite, the stand-in and the
// fault proxy serve (EnsureCert makes them).
func (f Files) CertFile() string { return filepath.Join(f.Local(), "certs", "cert.pem") }

// KeyFile is CertFile's private key.
func (f Files) KeyFile() string { return filepath.Join(f.Local(), "certs", "key.pem") }

// AuthKeyFile signs local API tokens; AuthPublicKeyFile verifies them (EnsureAuthKeys).
func (f Files) AuthKeyFile() string { return filepath.Join(f.Local(), "auth", "key.pem") }

// AuthPublicKeyFile is AuthKeyFile's public key.
func (f Files) AuthPublicKeyFile() string { return filepath.Join(f.Local(), "auth", "pub.pem") }

// LogDir holds the logs of the processes the stack starts.
func (f Files) LogDir() string { return filepath.Join(f.Local(), "logs") }

// AzuriteBin is the Azurite that `npm ci` installs from package-lock.json.
func (f Files) AzuriteBin() string { return filepath.Join(f.Root, "node_modules", ".bin", "azurite") }

// ModuleRoot is the directory of the nearest go.mod at or above dir.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above " + dir)
		}
		dir = parent
	}
}
