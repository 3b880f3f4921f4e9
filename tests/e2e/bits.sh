#!/usr/bin/env bash
# Bitmaps, LCS, OBJECT, SORT and DUMP/RESTORE end to end: the built binary driven by redis-cli.
set -euo pipefail
source "$(dirname "$0")/common.bash"

start_herald

expect "SETBIT creates" "0" "$(cli SETBIT visits 7 1)"
expect "SETBIT returns the old bit" "1" "$(cli SETBIT visits 7 1)"
expect "GETBIT" "1" "$(cli GETBIT visits 7)"
cli SET foo foobar >/dev/null
expect "BITCOUNT" "26" "$(cli BITCOUNT foo)"
expect "BITCOUNT BIT range" "17" "$(cli BITCOUNT foo 5 30 BIT)"
expect "BITPOS" "1" "$(cli BITPOS foo 1)"
expect "BITOP" "6" "$(cli BITOP XOR out foo visits)"
expect "BITFIELD" "$(printf '0\n255\n9')" "$(cli BITFIELD f SET u8 0 255 GET u8 0 INCRBY u8 0 10)"
expect "BITFIELD OVERFLOW FAIL" "" "$(cli BITFIELD f OVERFLOW FAIL INCRBY u8 0 300)"
expect "BITFIELD_RO" "9" "$(cli BITFIELD_RO f GET u8 0)"
expect "offset error" "ERR bit offset is not an integer or out of range" "$(cli SETBIT visits -1 1)"
expect "OBJECT ENCODING after SETBIT" "raw" "$(cli OBJECT ENCODING visits)"

cli MSET key1 ohmytext key2 mynewtext >/dev/null
expect "LCS" "mytext" "$(cli LCS key1 key2)"
expect "LCS LEN" "6" "$(cli LCS key1 key2 LEN)"
expect "LCS IDX" "$(printf 'matches\n4\n7\n5\n8\n4\nlen\n6')" "$(cli LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN)"

cli RPUSH nums 3 10 2 >/dev/null
cli MSET w_3 1 w_10 3 w_2 2 >/dev/null
expect "SORT" "$(printf '2\n3\n10')" "$(cli SORT nums)"
expect "SORT ALPHA DESC LIMIT" "$(printf '3\n2')" "$(cli SORT nums ALPHA DESC LIMIT 0 2)"
expect "SORT BY GET" "$(printf '3\n1\n2\n2\n10\n3')" "$(cli SORT nums BY 'w_*' GET '#' GET 'w_*')"
expect "SORT STORE" "3" "$(cli SORT nums STORE sorted)"
expect "the stored list" "$(printf '2\n3\n10')" "$(cli LRANGE sorted 0 -1)"
expect "SORT_RO" "10" "$(cli SORT_RO nums DESC LIMIT 0 1)"

# DUMP and RESTORE: a list's payload restored under another name, with a TTL.
cli RPUSH queue a b c >/dev/null
redis-cli -p "$PORT" --raw DUMP queue | head -c -1 >"$WORK/queue.dump"
redis-cli -p "$PORT" -x RESTORE copy 60000 <"$WORK/queue.dump" >"$WORK/restore.txt"
expect "RESTORE" "OK" "$(cat "$WORK/restore.txt")"
expect "the restored list" "$(printf 'a\nb\nc')" "$(cli LRANGE copy 0 -1)"
expect "RESTORE of an existing key" "BUSYKEY Target key name already exists." "$(redis-cli -p "$PORT" -x RESTORE copy 0 <"$WORK/queue.dump")"
expect "a bad payload" "ERR DUMP payload version or checksum are wrong" "$(cli RESTORE other 0 garbage)"

stop_herald
echo "all bits end-to-end checks passed"
