-- wrk script: POST /v1/cmd SET with a 3-byte value (redis-benchmark's default), over keep-alive
-- connections. Usage (docs/benchmarks.md): wrk -t1 -c50 -d10s -s bench/http-set.lua http://HOST:PORT/v1/cmd
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"cmd": ["SET", "key:__rand_int__", "xxx"]}'
