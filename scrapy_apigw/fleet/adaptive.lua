-- adaptive: compare-and-set of a provider's adaptive-rate record (AIMD, core/adaptive.py).
--
-- The AIMD rules run in Python (the same pure functions as in one process): a client reads the
-- record, computes the next state and writes it back here only if nobody wrote in between
-- (the version is unchanged); otherwise nothing is written and the current record comes back,
-- to compute again. Rate limits are rare events, so conflicts are too.
-- The clock prelude (scripts.py) defines `now`, microseconds.
--
-- KEYS[1] adaptive HASH  version, then the AdaptiveState fields (rate, burst, ceiling_rate,
--                        ceiling_burst, refused_rate, hold_until, next_increase, refused_at,
--                        decreases, increases) as decimal strings; times are server seconds
-- ARGV[1] the version the new state was computed from ('': read only; 0: no record yet)
-- ARGV[2] ttl, ms        ARGV[3..] field, value pairs of the new state
-- Returns {written 0/1, now us, version, field, value, field, value, ...}
local version = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
local written = 0
if ARGV[1] ~= '' and tonumber(ARGV[1]) == version and #ARGV > 2 then
  version = version + 1
  redis.call('HSET', KEYS[1], 'version', version)
  for i = 3, #ARGV - 1, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  written = 1
end
local reply = {written, now, version}
local record = redis.call('HGETALL', KEYS[1])
for i = 1, #record do
  reply[#reply + 1] = record[i]
end
return reply
