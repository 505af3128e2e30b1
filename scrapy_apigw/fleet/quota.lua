-- learn: store the quota a provider announced (e.g. X-Discogs-Ratelimit), for the whole fleet.
-- Fields not announced keep their earlier value. The clock prelude defines `now`, microseconds.
--
-- KEYS[1] quota HASH  limit, remaining, used, at (us: when last announced)
-- ARGV[1] limit  ARGV[2] remaining  ARGV[3] used  ('' where not announced)   ARGV[4] ttl, ms
-- Returns {now (us)}
local fields = {'limit', 'remaining', 'used'}
for i = 1, 3 do
  if ARGV[i] ~= '' then
    redis.call('HSET', KEYS[1], fields[i], ARGV[i])
  end
end
redis.call('HSET', KEYS[1], 'at', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {now}
