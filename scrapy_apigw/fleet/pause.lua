-- pause: no token for anyone before `now + delay` (a Retry-After seen by one process holds
-- the whole fleet until the same server instant). Set-if-later: an earlier end is ignored.
-- At the pause's end exactly one token is there and refill goes on from it (no burst after a
-- pause), as TokenBucket.block_until does. The clock prelude defines `now`, microseconds.
--
-- KEYS[1] bucket HASH (see rate.lua)
-- ARGV[1] delay, us (>= 0)   ARGV[2] rate, tokens per second   ARGV[3] burst, tokens
-- Returns {applied 0/1, pause end in force (us), now (us)}
local pause_end = now + tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local pause = tonumber(redis.call('HGET', KEYS[1], 'pause')) or 0
if pause_end <= pause then
  return {0, pause, now}
end
redis.call('HSET', KEYS[1], 'level', 1, 'ts', pause_end, 'pause', pause_end)
local full_at = pause_end + (burst - 1) * 1e6 / rate
redis.call('PEXPIRE', KEYS[1], math.ceil((full_at - now) / 1000) + 1000)
return {1, pause_end, now}
