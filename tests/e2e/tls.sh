#!/usr/bin/env bash
# TLS end to end on the built binary, with a test CA made here by the openssl CLI: redis-cli --tls
# (Debian's redis-tools is built with TLS), curl over HTTPS, Node's WebSocket over wss://, a certificate
# renewed and reloaded with SIGHUP, and client certificates (tls.auth_clients = "yes").
set -euo pipefail
source "$(dirname "$0")/common.bash"

# A CA, and certificates it signs for localhost / 127.0.0.1.
ca() { # ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=Herald e2e $1" \
    -keyout "$WORK/$1.key" -out "$WORK/$1.pem" 2>/dev/null
}
issue() { # issue CA NAME [SAN]
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$WORK/$2.key" -out "$WORK/$2.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "${3:-DNS:localhost,IP:127.0.0.1}" >"$WORK/$2.ext"
  openssl x509 -req -in "$WORK/$2.csr" -CA "$WORK/$1.pem" -CAkey "$WORK/$1.key" -CAcreateserial -days 1 \
    -extfile "$WORK/$2.ext" -out "$WORK/$2.pem" 2>/dev/null
}
ca ca
issue ca server
ca renewed-ca
issue renewed-ca renewed

tls_ports() {
  TLS_PORT=$(grep -o 'listening for RESP over TLS on [0-9.]*:[0-9]*' "$WORK/herald.log" | sed 's/.*://')
  HTTPS_PORT=$(grep -o 'listening for HTTPS on [0-9.]*:[0-9]*' "$WORK/herald.log" | sed 's/.*://')
}
export HERALD_TLS__ENABLED=true HERALD_TLS__PORT=0 HERALD_TLS__HTTP_PORT=0
export HERALD_TLS__CERT_FILE="$WORK/server.pem" HERALD_TLS__KEY_FILE="$WORK/server.key"
start_herald
wait_for_text "$WORK/herald.log" "listening for HTTPS"
tls_ports
tcli() { redis-cli --tls --cacert "$WORK/$1.pem" -p "$TLS_PORT" "${@:2}"; }
expect "redis-cli --tls PING" "PONG" "$(tcli ca PING)"
expect "redis-cli --tls SET" "OK" "$(tcli ca SET greeting 'over tls')"
expect "redis-cli --tls GET" "over tls" "$(tcli ca GET greeting)"
expect "the plain port sees it" "over tls" "$(cli GET greeting)"
expect "an untrusted CA fails" "" "$(tcli renewed-ca PING 2>/dev/null || true)"

# HTTPS with curl, then wss:// with Node's WebSocket (trusting the CA through NODE_EXTRA_CA_CERTS).
expect "curl https /v1/cmd" '{"result":"over tls"}' \
  "$(curl -sS --cacert "$WORK/ca.pem" -X POST "https://localhost:$HTTPS_PORT/v1/cmd" -d '{"cmd":["GET","greeting"]}')"
expect "curl https /healthz" "ok" "$(curl -sS --cacert "$WORK/ca.pem" "https://127.0.0.1:$HTTPS_PORT/healthz" | tr -d '\n')"
cat >"$WORK/wss.mjs" <<'JS'
const ws = new WebSocket(process.argv[2]);
const timer = setTimeout(() => { console.log("timeout"); process.exit(1); }, 5000);
ws.onopen = () => ws.send(JSON.stringify({ id: 1, cmd: ["GET", "greeting"] }));
ws.onmessage = (ev) => { console.log(ev.data); clearTimeout(timer); ws.close(); };
ws.onerror = (ev) => { console.log("error", ev.message ?? ""); process.exit(1); };
JS
expect "node wss:// GET" '{"id":1,"result":"over tls"}' \
  "$(NODE_EXTRA_CA_CERTS="$WORK/ca.pem" node --experimental-websocket --no-warnings "$WORK/wss.mjs" "wss://localhost:$HTTPS_PORT/ws")"

# Renewal: new files in place, SIGHUP, and new connections get the new certificate.
cp "$WORK/renewed.pem" "$WORK/server.pem"
cp "$WORK/renewed.key" "$WORK/server.key"
kill -HUP "$HERALD_PID"
wait_for_text "$WORK/herald.log" "SIGHUP: TLS certificate and key reloaded"
expect "after SIGHUP the renewed CA verifies" "PONG" "$(tcli renewed-ca PING)"
expect "and the old one does not" "" "$(tcli ca PING 2>/dev/null || true)"
# A broken pair on SIGHUP is refused; the renewed certificate keeps serving.
cp "$WORK/ca.pem" "$WORK/server.pem"
kill -HUP "$HERALD_PID"
wait_for_text "$WORK/herald.log" "SIGHUP: TLS files not reloaded"
expect "a bad pair keeps the current certificate" "PONG" "$(tcli renewed-ca PING)"
# CONFIG SET names other files.
expect "CONFIG SET tls-cert-file tls-key-file" "OK" \
  "$(cli CONFIG SET tls-cert-file "$WORK/renewed.pem" tls-key-file "$WORK/renewed.key")"
expect "CONFIG GET tls-cert-file" "$WORK/renewed.pem" "$(cli CONFIG GET tls-cert-file | tail -1)"
stop_herald

# Client certificates required: redis-cli with --cert/--key is served, without is not.
issue ca client "DNS:client"
export HERALD_TLS__CERT_FILE="$WORK/renewed.pem" HERALD_TLS__KEY_FILE="$WORK/renewed.key"
HERALD_TLS__CA_CERT_FILE="$WORK/ca.pem" HERALD_TLS__AUTH_CLIENTS=yes start_herald
wait_for_text "$WORK/herald.log" "listening for HTTPS"
tls_ports
expect "a client certificate is served" "PONG" "$(tcli renewed-ca --cert "$WORK/client.pem" --key "$WORK/client.key" PING)"
expect "no client certificate is refused" "" "$(tcli renewed-ca PING 2>/dev/null | grep PONG || true)"
stop_herald
echo "tls: all passed"
