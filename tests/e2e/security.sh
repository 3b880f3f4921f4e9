#!/usr/bin/env bash
# Security end to end with redis-cli: users and permissions, the refusal to listen on a network address
# without a password, and maxmemory (noeviction), on the built binary.
set -euo pipefail
source "$(dirname "$0")/common.bash"

# No open network listener by accident; --insecure and a password each let it start.
if "$HERALD_BIN" --bind 0.0.0.0 --port 0 --http-port 0 2>"$WORK/err.txt"; then fail "started on 0.0.0.0 without a password"; fi
grep -q "refusing to listen on 0.0.0.0 without authentication" "$WORK/err.txt" || fail "unclear refusal: $(cat "$WORK/err.txt")"
echo "ok - refuses 0.0.0.0 without a password"
start_herald --bind 0.0.0.0 --requirepass s3cret
expect "NOAUTH before AUTH" "NOAUTH Authentication required." "$(cli GET k 2>&1)"
expect "AUTH with the password" "OK" "$(cli -a s3cret --no-auth-warning SET k v)"
stop_herald
start_herald --bind 0.0.0.0 --insecure
expect "--insecure starts" "PONG" "$(cli PING)"
stop_herald

# A tenant confined by one pattern, as redis-cli --user sees it; ACL SAVE writes the file.
HERALD_ACL__ACLFILE="$WORK/users.acl" start_herald
expect "ACL SETUSER" "OK" "$(cli ACL SETUSER tenant-a on '>pw-a' '~tenant-a:*' '&tenant-a:*' +@all -@dangerous)"
a() { redis-cli -p "$PORT" --user tenant-a --pass pw-a --no-auth-warning "$@"; }
expect "own key" "OK" "$(a SET tenant-a:k v)"
expect "other tenant's key" "NOPERM this user has no permissions to access one of the keys used as arguments" "$(a GET tenant-b:k 2>&1)"
expect "other tenant's scope" "NOPERM this user has no permissions to access one of the keys used as arguments" "$(a BB.SET tenant-b k v 2>&1)"
expect "other tenant's queue" "NOPERM this user has no permissions to access one of the keys used as arguments" "$(a JOB.CLAIM tenant-b:q 2>&1)"
expect "dangerous command" "NOPERM this user has no permissions to run the 'flushall' command" "$(a FLUSHALL 2>&1)"
expect "WHOAMI" "tenant-a" "$(a ACL WHOAMI)"
expect "wrong password" "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." "$(redis-cli -p "$PORT" --user tenant-a --pass nope --no-auth-warning PING 2>&1 | head -1)"
expect "ACL SAVE" "OK" "$(cli ACL SAVE)"
grep -q '^user tenant-a on #[0-9a-f]\{64\} ~tenant-a:\* resetchannels &tenant-a:\* +@all -@dangerous$' "$WORK/users.acl" || fail "ACL file: $(cat "$WORK/users.acl")"
echo "ok - ACL SAVE writes hashed passwords"
stop_herald
HERALD_ACL__ACLFILE="$WORK/users.acl" start_herald
expect "users survive a restart through the ACL file" "OK" "$(a SET tenant-a:k2 v)"
stop_herald

# maxmemory with noeviction: writes refused with Redis's -OOM, reads and deletes go on.
start_herald
cli SET before v >/dev/null
expect "CONFIG SET maxmemory" "OK" "$(cli CONFIG SET maxmemory 1)"
expect "a write past maxmemory" "OOM command not allowed when used memory > 'maxmemory'." "$(cli SET k v 2>&1)"
expect "a Herald write past maxmemory" "OOM command not allowed when used memory > 'maxmemory'." "$(cli JOB.SUBMIT q p 2>&1)"
expect "reads go on" "v" "$(cli GET before)"
expect "deletes go on" "1" "$(cli DEL before)"
expect "INFO shows it" "maxmemory:1" "$(cli INFO memory | tr -d '\r' | grep '^maxmemory:')"
expect "other policies refused" "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - Herald has only the noeviction policy: it refuses writes past maxmemory and never deletes data" "$(cli CONFIG SET maxmemory-policy allkeys-lru 2>&1)"
expect "CONFIG SET maxmemory 0" "OK" "$(cli CONFIG SET maxmemory 0)"
expect "writes again" "OK" "$(cli SET k v)"
stop_herald
echo "security: all passed"
