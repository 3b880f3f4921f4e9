#!/usr/bin/env bash
# The foundation end to end: the built binary, driven by redis-cli and a raw socket.
set -euo pipefail
source "$(dirname "$0")/common.bash"

"$HERALD_BIN" --help | grep -q -- '--requirepass' || fail "--help does not list the flags"
echo "ok - herald --help"
if HERALD_PORT=notaport "$HERALD_BIN" 2>"$WORK/err.txt"; then fail "a bad config value was accepted"; fi
grep -q "port" "$WORK/err.txt" || fail "config error does not name the key: $(cat "$WORK/err.txt")"
echo "ok - a config error names the key"

HERALD_NOTIFY_KEYSPACE_EVENTS=Ex start_herald

expect "PING" "PONG" "$(cli PING)"
expect "SET" "OK" "$(cli SET greeting hello)"
expect "GET" "hello" "$(cli GET greeting)"
expect "INCR" "1" "$(cli INCR visits)"
expect "TTL without expiry" "-1" "$(cli TTL greeting)"
expect "TTL of a missing key" "-2" "$(cli TTL nothing)"
expect "wrong type error" "ERR value is not an integer or out of range" "$(cli INCR greeting)"
expect "unknown command" "ERR unknown command 'NOPE', with args beginning with: 'x' " "$(cli NOPE x)"
expect "RESP3 via HELLO" "proto 3" "$(cli -3 HELLO 3 | grep '^proto')"

# An inline command typed into a raw socket, as with nc or telnet.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'PING\r\nECHO "hello world"\r\n' >&3
read -r -t 2 line1 <&3
read -r -t 2 line2 <&3
read -r -t 2 line3 <&3
exec 3>&-
expect "inline PING" "+PONG" "${line1%$'\r'}"
expect "inline quoted argument" "hello world" "${line3%$'\r'}"

# 10,000 commands pipelined through redis-cli --pipe.
for i in $(seq 1 10000); do printf 'SET key:%d %d\r\n' "$i" "$i"; done | cli --pipe >"$WORK/pipe.txt"
grep -q "errors: 0, replies: 10000" "$WORK/pipe.txt" || fail "pipe: $(cat "$WORK/pipe.txt")"
expect "DBSIZE after the pipe" "10002" "$(cli DBSIZE)"
cli INFO keyspace | grep -q "^db0:keys=10002,expires=0" || fail "INFO keyspace: $(cli INFO keyspace)"
echo "ok - INFO keyspace"

# SCAN through redis-cli's iterator returns every key once.
expect "SCAN covers every key" "10002" "$(cli --scan | sort -u | wc -l | tr -d ' ')"

# Pub-sub: a subscriber in the background, a publisher counting receivers.
redis-cli -p "$PORT" SUBSCRIBE news >"$WORK/sub.txt" &
SUB=$!
wait_for_text "$WORK/sub.txt" "subscribe"
expect "PUBLISH counts receivers" "1" "$(cli PUBLISH news "hello subscribers")"
wait_for_text "$WORK/sub.txt" "hello subscribers"
echo "ok - subscriber received the message"
kill "$SUB"

# Expired events fire from the timer, not on the next read.
redis-cli -p "$PORT" SUBSCRIBE __keyevent@0__:expired >"$WORK/expired.txt" &
EXP=$!
wait_for_text "$WORK/expired.txt" "subscribe"
cli SET short-lived v PX 100 >/dev/null
wait_for_text "$WORK/expired.txt" "short-lived"
echo "ok - expired event delivered without touching the key"
kill "$EXP"

# MULTI/EXEC through redis-cli (one connection, commands on stdin).
printf 'MULTI\nSET a 1\nINCR a\nEXEC\n' | cli >"$WORK/multi.txt"
expect "MULTI/EXEC" "OK QUEUED QUEUED OK 2" "$(tr '\n' ' ' <"$WORK/multi.txt" | sed 's/ $//')"

stop_herald
echo "ok - graceful shutdown on SIGTERM"

# A password-protected broker refuses commands before AUTH.
start_herald --requirepass s3cret
expect "NOAUTH before AUTH" "NOAUTH Authentication required." "$(cli GET x 2>&1)"
expect "commands after AUTH" "PONG" "$(cli -a s3cret --no-auth-warning PING)"
expect "wrong password" "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." "$(cli -a nope --no-auth-warning PING 2>&1 | head -1)"
stop_herald
