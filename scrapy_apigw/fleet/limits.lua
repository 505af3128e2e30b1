-- limits: read one provider's shared rate-limit state, or reset it (admin use).
-- The clock prelude defines `now`, microseconds.
--
-- KEYS[1] bucket HASH  KEYS[2] line ZSET  KEYS[3] window LIST  KEYS[4] quota HASH
-- KEYS[5] adaptive HASH (see rate.lua)
-- ARGV[1] op: inspect | reset
-- ARGV[2] rate, tokens per second   ARGV[3] burst, tokens   ARGV[4] window length, us (0: none)
-- reset: the shared pause ends, the bucket is full again, the line is empty and the effective
-- (adaptive) rate and burst are the configured ones again. The window log and the learned
-- quota are kept: they count sends the provider counts too.
-- Returns {now us, tokens (string), pause end us (0: none), waiters, sends in the window,
--          learned limit (-1: none), learned remaining (-1: none), effective rate (string,
--          '' : the configured one), effective burst (-1: the configured one)}
local op = ARGV[1]
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local wlen = tonumber(ARGV[4])
if op == 'reset' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
elseif op ~= 'inspect' then
  return redis.error_reply('ERR unknown limits op ' .. op)
end
local a = redis.call('HMGET', KEYS[5], 'rate', 'burst')
local erate, eburst = '', -1
if tonumber(a[1]) and tonumber(a[2]) then
  rate = math.min(rate, tonumber(a[1]))
  burst = math.max(1, math.min(burst, math.floor(tonumber(a[2]))))
  erate, eburst = tostring(rate), burst
end
local b = redis.call('HMGET', KEYS[1], 'level', 'ts', 'pause')
local level = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
local pause = tonumber(b[3]) or 0
if now >= ts then
  level = math.min(burst, level + (now - ts) * rate / 1e6)
  ts = now
end
local tokens = level - (ts - now) * rate / 1e6
if pause <= now then
  pause = 0
end
local sends = 0
if wlen > 0 then
  for _, t in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    if tonumber(t) > now - wlen then
      sends = sends + 1
    end
  end
end
local q = redis.call('HMGET', KEYS[4], 'limit', 'remaining')
return {now, tostring(tokens), pause, redis.call('ZCARD', KEYS[2]), sends,
  tonumber(q[1]) or -1, tonumber(q[2]) or -1, erate, eburst}
