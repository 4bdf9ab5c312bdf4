// Command package builds the package the Azure Functions host runs (`make package`):
// dist/azcreds.zip with host.json, the linux/amd64 handler (mode 0755) and one folder per
// function at its root, staged first under dist/package/. See internal/deploy.
//
//	go run ./cmd/package [-root .] [-out dist]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/activeloopai/azcreds/internal/deploy"
)

func main() {
	root := flag.String("root", ".", "module root (go.mod, host.json, functions/)")
	out := flag.String("out", "dist", "output directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := deploy.Build(ctx, deploy.Options{Root: *root, Out: *out, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	info, err := os.Stat(res.Zip)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d bytes; %s (%s/%s, mode 0755), host.json, %d functions: %v\n",
		res.Zip, info.Size(), res.Executable, deploy.GOOS, deploy.GOARCH, len(res.Functions), res.Functions)
}
