-- breaker: the state machine of core/breaker.py (CircuitBreaker), shared by the fleet.
-- Every operation first applies the lazy OPEN -> HALF_OPEN step at `now`, then its own rule;
-- the whole call is one atomic transition. The clock prelude defines `now`, microseconds.
--
-- KEYS[1] breaker HASH  state, failures (consecutive), successes (half-open), open_until (us),
--                       opened (times opened), seq (last permit id), last_failure (us: the
--                       server instant of the last failure), resets (admin resets so far)
-- KEYS[2] probes  ZSET  permit id -> lease expiry (us): the half-open probe permits out
-- ARGV[1] op: allow | peek | success | failure | ignored | reset
-- ARGV[2] failure threshold   ARGV[3] success threshold (and concurrent probe permits)
-- ARGV[4] open timeout, us (also a permit's lease)   ARGV[5] permit id ('' : none)
-- ARGV[6] ttl, ms: the least time the breaker's counts are kept while idle
-- Returns {allowed 0/1 (allow: permitted; peek: not OPEN), retry in (us), failures, permits out, permit ('' : none),
--          state before, state after, transitions..., as from/to pairs}
local op = ARGV[1]
local failure_threshold = tonumber(ARGV[2])
local success_threshold = tonumber(ARGV[3])
local open_timeout = tonumber(ARGV[4])
local permit = ARGV[5]
local ttl = tonumber(ARGV[6])

local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'successes', 'open_until')
local state = h[1] or 'closed'
local failures = tonumber(h[2]) or 0
local successes = tonumber(h[3]) or 0
local open_until = tonumber(h[4]) or 0
local before = state
local transitions = {}

local function go(new)
  if new == state then
    return
  end
  transitions[#transitions + 1] = state
  transitions[#transitions + 1] = new
  state = new
  if new == 'closed' then
    failures = 0
    redis.call('DEL', KEYS[2])
  end
end

local function open()
  open_until = now + open_timeout
  redis.call('DEL', KEYS[2])
  redis.call('HINCRBY', KEYS[1], 'opened', 1)
  go('open')
end

-- A result releases its own permit; one that names none releases the oldest lease (results do
-- not say which permit they answer, as in CircuitBreaker._release).
local function release()
  if permit ~= '' then
    redis.call('ZREM', KEYS[2], permit)
  else
    redis.call('ZPOPMIN', KEYS[2])
  end
end

if state == 'open' and now >= open_until then
  successes = 0
  redis.call('DEL', KEYS[2])
  go('half_open')
end

local allowed = 0
local granted = ''
if op == 'allow' then
  if state == 'closed' then
    allowed = 1
  elseif state == 'half_open' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) -- probes whose result never came
    if redis.call('ZCARD', KEYS[2]) < success_threshold then
      granted = tostring(redis.call('HINCRBY', KEYS[1], 'seq', 1))
      redis.call('ZADD', KEYS[2], now + open_timeout, granted)
      allowed = 1
    end
  end
elseif op == 'success' then
  failures = 0
  if state == 'half_open' then
    release()
    successes = successes + 1
    if successes >= success_threshold then
      go('closed')
    end
  end
elseif op == 'failure' then
  failures = failures + 1
  redis.call('HSET', KEYS[1], 'last_failure', now)
  if state == 'half_open' or (state == 'closed' and failures >= failure_threshold) then
    open()
  end
  -- While OPEN: a late result, not extending the open period (Polly v8).
elseif op == 'ignored' then
  if state == 'half_open' then
    release()
  end
elseif op == 'reset' then
  redis.call('HINCRBY', KEYS[1], 'resets', 1)
  failures = 0
  successes = 0
  redis.call('DEL', KEYS[2])
  go('closed')
elseif op == 'peek' then
  if state ~= 'open' then
    allowed = 1
  end
else
  return redis.error_reply('ERR unknown breaker op ' .. op)
end

redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'successes', successes,
  'open_until', open_until)
local keep = math.max(ttl, math.ceil((open_until + open_timeout - now) / 1000))
redis.call('PEXPIRE', KEYS[1], keep + 1000)
local permits = redis.call('ZCARD', KEYS[2])
if permits > 0 then
  redis.call('PEXPIRE', KEYS[2], math.ceil(open_timeout / 1000) + 1000)
end
local retry_in = 0
if state == 'open' then
  retry_in = math.max(0, open_until - now)
end
local reply = {allowed, retry_in, failures, permits, granted, before, state}
for i = 1, #transitions do
  reply[#reply + 1] = transitions[i]
end
return reply
