#!/usr/bin/env bash
# Makes a throwaway certificate authority and two certificates it signs, for trying TLS and
# mutual TLS on one machine (README "Access control"; the TLS integration tests use it too):
#   ca.pem                 the CA (trust it: server --tls_client_ca, tokenctl --ca)
#   server.pem server.key  the server's (SANs DNS:localhost, IP:127.0.0.1, and every
#                          DNS_NAME given: the names clients reach it by, e.g. a compose
#                          service or a Kubernetes Service such as
#                          tokenstatus.tokenstatus.svc.cluster.local)
#   client.pem client.key  a client's (SANs, in order: email:oncall@example.com,
#                          URI:spiffe://tokenstatus.local/ops/oncall, DNS:oncall.ops.example;
#                          its principal is the first DNS or URI SAN: the URI)
# Usage: scripts/make-dev-certs.sh DIR [DNS_NAME ...]   (DIR is created; existing files are
# replaced)
# Keys are P-256, valid 30 days, readable by the owner only. Not for production.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 DIR [DNS_NAME ...]" >&2; exit 2; }
dir="$1"
shift
server_sans="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
  [[ "${name}" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] ||
    { echo "$0: not a DNS name: ${name}" >&2; exit 2; }
  server_sans+=",DNS:${name}"
done
mkdir -p "${dir}"
cd "${dir}"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# sign NAME CN SANS: NAME.pem signed by the CA, for NAME.key.
sign() {
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n' \
    "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=tokenstatus dev CA" -days 30 -out ca.pem
key server.key
sign server localhost "${server_sans}" serverAuth
key client.key
sign client oncall "email:oncall@example.com,URI:spiffe://tokenstatus.local/ops/oncall,DNS:oncall.ops.example" clientAuth
rm -f ca.srl
chmod 644 ca.pem server.pem client.pem
echo "made ca.pem, server.pem/server.key, client.pem/client.key in ${dir}"
