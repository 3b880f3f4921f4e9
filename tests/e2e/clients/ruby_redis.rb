# ruby-redis against Herald: the data types, pub-sub, a transaction, a blocking pop and the lagged notice.
# Run by tests/e2e/clients.sh with PORT and FLOOD in the environment.
require "redis"

PORT = Integer(ENV.fetch("PORT"))

def check(what, expected, got)
  abort("FAIL ruby-redis #{what}: expected #{expected.inspect}, got #{got.inspect}") unless expected == got
  puts "ok - ruby-redis: #{what}"
end

r = Redis.new(port: PORT)
r.flushall
r.set("s", "v")
check("SET / GET", "v", r.get("s"))
r.rpush("l", %w[a b c])
check("RPUSH / LRANGE", %w[a b c], r.lrange("l", 0, -1))
r.hset("h", "f", "1", "g", "2")
check("HSET / HGETALL", { "f" => "1", "g" => "2" }, r.hgetall("h"))
r.sadd("st", %w[x y])
check("SADD / SMEMBERS", %w[x y], r.smembers("st").sort)
check("MULTI / EXEC", ["OK", 2, "2"], r.multi { |t| t.set("t", "1"); t.incr("t"); t.get("t") })

waiter = Thread.new { Redis.new(port: PORT).blpop("queue", timeout: 10) }
sleep 0.01 until r.info("clients")["blocked_clients"] == "1"
r.rpush("queue", "job")
check("BLPOP woken by RPUSH", %w[queue job], waiter.value)

# Pub-sub, then the lagged notice: the flood runs inside the subscribe callback, so nothing is read meanwhile.
lost = 0
first = nil
catch(:done) do
  Redis.new(port: PORT).subscribe("firehose") do |on|
    on.subscribe do |_channel, _count|
      Redis.new(port: PORT).publish("firehose", "first")
    end
    on.message do |channel, message|
      if channel == "__herald__:lagged"
        lost += Integer(message)
      elsif message == "first"
        first = message
        system(ENV.fetch("FLOOD"), exception: true)
      elsif message.start_with?("09999")
        throw :done
      end
    end
  end
end
check("SUBSCRIBE / PUBLISH / message", "first", first)
abort("FAIL ruby-redis: no lagged notice") unless lost.positive?
puts "ok - ruby-redis: the lagged notice is a message on __herald__:lagged (#{lost} lost)"
