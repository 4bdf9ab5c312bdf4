#!/usr/bin/env bash
# deps.sh installs what the local stack needs and is missing; quick when nothing is:
#   - node_modules (Azurite) with `npm ci` when missing or older than package-lock.json
#   - .local/certs/{cert,key}.pem: self-signed TLS certificate for Azurite and the stand-in
#   - .local/auth/{key,pub}.pem: RSA key pair for local API tokens
#   - the Go modules of go.mod
# Needs only go, node/npm and openssl.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AZCREDS_ROOT"

say() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

for tool in go node npm openssl; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (the local stack needs go, node/npm and openssl)"
done

# step NAME CMD... runs CMD and reports how long it took.
step() {
	local name=$1 start=$SECONDS
	shift
	say "$name"
	"$@"
	say "$name: done in $((SECONDS - start)) s"
}

npm_install() {
	if [[ -f package-lock.json ]]; then
		npm ci --no-audit --no-fund --loglevel=error --progress=false
	else
		# First install ever: this writes package-lock.json, which belongs in git.
		npm install --no-audit --no-fund --loglevel=error --progress=false
	fi
	touch node_modules/.package-lock.json
}

if [[ ! -x node_modules/.bin/azurite || ! -f node_modules/.package-lock.json ||
	package-lock.json -nt node_modules/.package-lock.json || package.json -nt node_modules/.package-lock.json ]]; then
	step "npm ci (Azurite, from package-lock.json)" npm_install
fi

# make_cert writes a self-signed certificate valid for 127.0.0.1, localhost and the
# product-style hosts <account>.{blob,queue,table}.localhost.
make_cert() {
	local dir tmp
	dir=$(dirname "$AZCREDS_CERT_FILE")
	mkdir -p "$dir"
	tmp=$(mktemp -d "$dir/.new.XXXXXX")
	cat >"$tmp/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = localhost
O = azcreds local stack
[v3]
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:*.blob.localhost, DNS:*.queue.localhost, DNS:*.table.localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
CNF
	(umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
		-config "$tmp/openssl.cnf" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>"$tmp/err") ||
		{
			cat "$tmp/err" >&2
			rm -rf "$tmp"
			die "openssl could not create the TLS certificate"
		}
	chmod 644 "$tmp/cert.pem"
	mv -f "$tmp/key.pem" "$AZCREDS_CERT_KEY_FILE"
	mv -f "$tmp/cert.pem" "$AZCREDS_CERT_FILE"
	rm -rf "$tmp"
}

# cert_usable succeeds when the certificate and its key are there, belong together and the
# certificate is good for 30 more days.
cert_usable() {
	[[ -s "$AZCREDS_CERT_FILE" && -s "$AZCREDS_CERT_KEY_FILE" ]] &&
		openssl x509 -checkend 2592000 -noout -in "$AZCREDS_CERT_FILE" >/dev/null 2>&1 &&
		[[ "$(openssl x509 -pubkey -noout -in "$AZCREDS_CERT_FILE" 2>/dev/null)" == \
		"$(openssl pkey -pubout -in "$AZCREDS_CERT_KEY_FILE" 2>/dev/null)" ]]
}

if ! cert_usable; then
	step "TLS certificate (${AZCREDS_CERT_FILE#"$AZCREDS_ROOT"/})" make_cert
fi

# make_auth_keys writes the PKCS#8 RSA private key (when missing) and its public key.
make_auth_keys() {
	local dir
	dir=$(dirname "$AZCREDS_AUTH_KEY_FILE")
	mkdir -p "$dir"
	if [[ ! -s "$AZCREDS_AUTH_KEY_FILE" ]]; then
		(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
			-out "$AZCREDS_AUTH_KEY_FILE.new" 2>/dev/null) || die "openssl could not create the API token key"
		mv -f "$AZCREDS_AUTH_KEY_FILE.new" "$AZCREDS_AUTH_KEY_FILE"
	fi
	openssl pkey -in "$AZCREDS_AUTH_KEY_FILE" -pubout -out "$AZCREDS_AUTH_PUB_FILE.new"
	mv -f "$AZCREDS_AUTH_PUB_FILE.new" "$AZCREDS_AUTH_PUB_FILE"
}

if [[ ! -s "$AZCREDS_AUTH_KEY_FILE" || ! -s "$AZCREDS_AUTH_PUB_FILE" ||
	"$AZCREDS_AUTH_KEY_FILE" -nt "$AZCREDS_AUTH_PUB_FILE" ]]; then
	step "API token keys (${AZCREDS_AUTH_KEY_FILE#"$AZCREDS_ROOT"/}, pub.pem)" make_auth_keys
fi

step "go mod download" go mod download
