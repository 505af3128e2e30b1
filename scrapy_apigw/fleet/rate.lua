-- acquire: one send to one provider, decided for the whole fleet at one server instant.
--
-- Grant-or-tell-the-wait (docs/design.md, "Fleet-wide limits"): a token is taken only by the
-- call that grants it, so no token is ever redeemed later (a stalled process cannot send a
-- backlog); a denied waiter joins the fleet's line and is told the instant of its turn.
-- The clock prelude (scripts.py) defines `now`, microseconds.
--
-- KEYS[1] bucket  HASH  level (tokens at ts), ts (us), pause (us: no token before it)
-- KEYS[2] line    ZSET  waiter -> turn (us); the order in which waiters are served
-- KEYS[3] window  LIST  grant instants (us) still inside the window, newest first
-- KEYS[4] quota   HASH  limit, remaining: the provider's announced quota (read only here)
-- KEYS[5] adaptive HASH rate, burst, version: the fleet's effective rate and burst (AIMD,
--                        written by adaptive.lua; read only here); absent: the configured ones
-- ARGV[1] rate, tokens per second        ARGV[2] burst, tokens (capacity; the bucket starts full)
-- ARGV[3] waiter id                       ARGV[4] grace, us: how long a late waiter keeps its turn
-- ARGV[5] window limit, sends (0: none)   ARGV[6] window length, us
-- ARGV[7] margin: sends kept below a learned limit
-- ARGV[8] early, us: a token due within this is granted now (at most a quarter of 1 / rate;
--         absent: 0). The bucket then runs up to `early * rate` tokens below zero, so any
--         interval of L seconds holds at most burst + rate * (L + early) grants (docs/design.md,
--         "Early grants"); the pause and the window quota are never granted early.
-- ARGV[9] '1': the waiter has another send queued behind this one: on a grant it is put
--         back in the line at once, at its next turn (told as the last reply field), so it
--         need not ask just to be told its wait (absent or '0': not)
-- Returns {one string of 14 numbers separated by spaces: granted 0/1, wait us, tokens
--          (%.17g), ahead, pause us, now us, window used, window limit in force, learned limit
--          (-1: none), learned remaining (-1: none), rate in force (%.17g), burst in force,
--          adaptive version (0: none), next turn us from now (-1: not queued)}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])

-- The effective rate and burst replace the configured ones, which stay the ceiling.
local version = 0
if KEYS[5] then
  local a = redis.call('HMGET', KEYS[5], 'rate', 'burst', 'version')
  if tonumber(a[1]) and tonumber(a[2]) then
    rate = math.min(rate, tonumber(a[1]))
    burst = math.max(1, math.min(burst, math.floor(tonumber(a[2]))))
    version = tonumber(a[3]) or 0
  end
end
local waiter = ARGV[3]
local grace = tonumber(ARGV[4])
local wlimit = tonumber(ARGV[5])
local wlen = tonumber(ARGV[6])
local margin = tonumber(ARGV[7])
local early = math.min(tonumber(ARGV[8]) or 0, math.floor(0.25e6 / rate))
local slack = early * rate / 1e6 -- tokens a grant may run the bucket below zero
local queue_next = ARGV[9] == '1'

-- A level within 1e-9 of a whole token is that token (float readings at computed instants).
local function snap(x)
  local whole = math.floor(x + 0.5)
  if math.abs(x - whole) < 1e-9 then
    return whole
  end
  return x
end

-- Token bucket: the level is linear in time from (level, ts), capped at burst. A pause sets
-- ts to the pause's end with one token there, so before it the level is below one token.
local b = redis.call('HMGET', KEYS[1], 'level', 'ts', 'pause')
local level = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
local pause = tonumber(b[3]) or 0
if now >= ts then
  level = snap(math.min(burst, level + (now - ts) * rate / 1e6))
  ts = now
end
local tokens = snap(level - (ts - now) * rate / 1e6)

-- The line: a waiter later than its turn by more than the grace loses its place.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%.0f', now - grace))
local rank = redis.call('ZRANK', KEYS[2], waiter)
local ahead = rank or redis.call('ZCARD', KEYS[2])

-- The window quota: the learned limit (minus the margin) replaces the configured one.
local q = redis.call('HMGET', KEYS[4], 'limit', 'remaining')
local qlimit = tonumber(q[1])
local qremaining = tonumber(q[2])
local limit = 0
if wlimit > 0 and wlen > 0 then
  limit = wlimit
  if qlimit then
    limit = math.max(1, qlimit - margin)
  end
  while true do -- forget grants that left the window (now - wlen, now]
    local oldest = tonumber(redis.call('LINDEX', KEYS[3], -1))
    if oldest == nil or oldest > now - wlen then
      break
    end
    redis.call('RPOP', KEYS[3])
  end
end

-- Earliest instant at which the j-th next send fits every window: the send `limit` places
-- before it must have left the window (it is in the log, or a waiter ahead in the line).
local function window_free(j)
  if limit == 0 then
    return now
  end
  if j <= limit then
    local s = tonumber(redis.call('LINDEX', KEYS[3], limit - j))
    if s then
      return s + wlen
    end
    return now
  end
  local m = redis.call('ZRANGE', KEYS[2], j - limit - 1, j - limit - 1, 'WITHSCORES')
  if m[2] then
    return tonumber(m[2]) + wlen
  end
  return now
end

-- The earliest instant a waiter with `before` waiters ahead may be granted, for `tok` tokens
-- now: a token (minus the early slack) beyond those kept for the waiters ahead, the pause over,
-- a window place free; a newcomer also comes after the last waiter in line.
local function turn_for(before, tok, newcomer)
  local turn = math.max(now, pause, window_free(before + 1))
  local need = before + 1 - slack - tok
  if need > 0 then
    turn = math.max(turn, now + need * 1e6 / rate)
  end
  if newcomer then -- a newcomer is never served before a waiter already in line
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    if last[2] then
      turn = math.max(turn, tonumber(last[2]))
    end
  end
  return math.ceil(turn)
end

-- Waiters ahead keep a token and a window place each: a newcomer never takes them.
local free_at = window_free(ahead + 1)
local granted = now >= pause and snap(tokens - ahead + slack) >= 1 and free_at <= now
local wait = 0
local next_wait = -1
if granted then
  level = tokens - 1
  ts = now
  tokens = level
  ahead = 0
  redis.call('ZREM', KEYS[2], waiter)
  if limit > 0 then
    redis.call('LPUSH', KEYS[3], now)
  end
  if queue_next then
    local turn = turn_for(redis.call('ZCARD', KEYS[2]), tokens, true)
    redis.call('ZADD', KEYS[2], turn, waiter)
    next_wait = turn - now
  end
else
  local turn = turn_for(ahead, tokens, not rank)
  redis.call('ZADD', KEYS[2], turn, waiter)
  wait = turn - now
end

-- Every key expires once its absence means the same thing: a full bucket, an empty line,
-- an empty window (plus 1 s so nothing expires on the boundary).
redis.call('HSET', KEYS[1], 'level', level, 'ts', ts, 'pause', pause)
local full_at = ts + (burst - level) * 1e6 / rate
redis.call('PEXPIRE', KEYS[1], math.ceil((full_at - now) / 1000) + 1000)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(last[2]) + grace - now) / 1000) + 1000)
end
local used = 0
if limit > 0 then
  local newest = tonumber(redis.call('LINDEX', KEYS[3], 0))
  if newest then
    redis.call('PEXPIRE', KEYS[3], math.ceil((newest + wlen - now) / 1000) + 1000)
  end
  used = redis.call('LLEN', KEYS[3])
end
-- One string of 14 numbers, not 14 reply elements: the client parses one line instead of 17
-- (the reply is read on every acquire).
return {string.format('%d %d %.17g %d %d %d %d %d %d %d %.17g %d %d %d', granted and 1 or 0,
  wait, tokens, ahead, pause, now, used, limit, qlimit or -1, qremaining or -1, rate, burst,
  version, next_wait)}
