-- heartbeat: this process is alive; count the fleet's live processes.
-- A process is live for `ttl` after its last beat. The clock prelude defines `now`, microseconds.
--
-- KEYS[1] processes ZSET  process id -> last beat (us)
-- KEYS[2] resets    HASH  '<kind>:<provider>' -> admin resets so far (kind: breaker, limits;
--                         optional): every process learns of a reset with its next beat
-- ARGV[1] process id   ARGV[2] ttl, us
-- Returns {live processes (this one included), now (us), reset field, count, field, count...}
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - ttl))
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
local reply = {redis.call('ZCARD', KEYS[1]), now}
if KEYS[2] then
  local resets = redis.call('HGETALL', KEYS[2])
  for i = 1, #resets do
    reply[#reply + 1] = resets[i]
  end
end
return reply
