"""The Lua scripts of the Redis backend.

`TOKEN_BUCKET` is the whole token bucket (GCRA, as `axtui.ratelimit.gcra`)
in one script: every bucket of an admission is decided and written in one
atomic step, on Redis's own clock, so replicas with skewed clocks agree.
`COUNTER_ADJUST` corrects a sliding window counter kept by `limits`
(same keys and expiry scheme as its ``acquire_sliding_window.lua``), for
token estimates settled after the call and for all-or-nothing refunds.
"""

from __future__ import annotations

__all__ = ["COUNTER_ADJUST", "TOKEN_BUCKET"]

#: KEYS: one key per bucket, each holding "STAMP LEVEL" (microseconds, units in
#: use then). ARGV[1]: "acquire" | "adjust" | "peek"; then per bucket three
#: numbers: interval (microseconds per unit), capacity (units), cost (units; the
#: delta for "adjust"). Returns {all_allowed, then per bucket: allowed,
#: remaining, reset_us, retry_us, used} (retry_us -1: never, the cost exceeds
#: the capacity). "acquire" writes only when every bucket allows; "adjust"
#: always writes; "peek" never does.
TOKEN_BUCKET = """
if redis.replicate_commands then redis.replicate_commands() end
local mode = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {1}
local writes = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local capacity = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local tolerance = math.min(0.001, 1 / interval)
  local stamp, level = now, 0
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local s, l = string.match(raw, '^(%S+) (%S+)$')
    stamp, level = tonumber(s), tonumber(l)
    if stamp < now then
      level = level - (now - stamp) / interval
      if level < 0 then level = 0 end
      stamp = now
    end
  end
  local ahead = stamp - now
  local allowed, retry, basis = 1, 0, level
  if mode == 'acquire' then
    local new_level = level + cost
    if cost > capacity then
      allowed, retry = 0, -1
    elseif new_level > capacity + tolerance then
      allowed, retry = 0, math.ceil(ahead + (new_level - capacity) * interval)
    else
      basis = new_level
      writes[#writes + 1] = {KEYS[i], stamp, new_level, interval}
    end
  elseif mode == 'adjust' then
    basis = level + cost
    if basis < 0 then basis = 0 end
    writes[#writes + 1] = {KEYS[i], stamp, basis, interval}
  end
  if allowed == 0 then out[1] = 0 end
  local remaining = math.floor(capacity - basis + tolerance)
  if remaining < 0 then remaining = 0 end
  local used = math.ceil(basis - tolerance)
  if used > capacity then used = capacity end
  if used < 0 then used = 0 end
  out[#out + 1] = allowed
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(ahead + basis * interval)
  out[#out + 1] = retry
  out[#out + 1] = used
end
if mode == 'adjust' or out[1] == 1 then
  for _, w in ipairs(writes) do
    if w[3] <= 0 then
      redis.call('DEL', w[1])
    else
      local ttl_ms = math.ceil((w[2] - now + w[3] * w[4]) / 1000) + 1
      redis.call('SET', w[1], string.format('%.17g %.17g', w[2], w[3]), 'PX', ttl_ms)
    end
  end
end
return out
"""

#: KEYS[1]: the previous window's key, KEYS[2]: the current one (limits' layout).
#: ARGV[1]: the window in seconds, ARGV[2]: the units to add (negative: take back,
#: from the current window first, then the previous one). Returns 1.
COUNTER_ADJUST = """
local expiry = tonumber(ARGV[1]) * 1000
local delta = tonumber(ARGV[2])
local current_ttl = tonumber(redis.call('PTTL', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
  redis.call('RENAME', KEYS[2], KEYS[1])
  redis.call('SET', KEYS[2], 0, 'PX', current_ttl + expiry)
end
if delta > 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('INCRBY', KEYS[2], delta)
  else
    redis.call('SET', KEYS[2], delta, 'PX', expiry * 2)
  end
  return 1
end
local need = -delta
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local take = math.min(current, need)
if take > 0 then redis.call('DECRBY', KEYS[2], take) end
need = need - take
if need > 0 then
  local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
  take = math.min(previous, need)
  if take > 0 then redis.call('DECRBY', KEYS[1], take) end
end
return 1
"""
