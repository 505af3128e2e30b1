-- heartbeat: this process is alive; count the fleet's live processes.
-- A process is live for `ttl` after its last beat. The clock prelude defines `now`, microseconds.
--
-- KEYS[1] processes ZSET  process id -> last beat (us)
-- ARGV[1] process id   ARGV[2] ttl, us
-- Returns {live processes (this one included), now (us)}
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - ttl))
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
return {redis.call('ZCARD', KEYS[1]), now}
