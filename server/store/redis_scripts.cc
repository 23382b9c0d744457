#include "server/store/redis_scripts.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/store/token_store.h"

namespace tokenstatus {
namespace {

// Declares that a script writes (and so is refused up front when Redis is out of memory).
constexpr absl::string_view kWriteShebang = "#!lua\n";
constexpr absl::string_view kReadOnlyShebang = "#!lua flags=no-writes\n";

// Shared by the change scripts (layout in redis_scripts.h).
constexpr absl::string_view kChangePrelude = R"lua(
local FIELDS = {'id', 'account_id', 'name', 'description', 'state', 'revision', 'create_time',
                'update_time', 'updated_by', 'state_reason', 'secret_sha256'}

local function index(name)
  return ARGV[1] .. ':idx:' .. name
end

-- The fields a state change rewrites (a creation writes all FIELDS).
local CHANGED = {'state', 'revision', 'update_time', 'updated_by', 'state_reason'}

-- Records the change of the token `r` (field -> value, completed in place with revision, times
-- and actor) as the next revision, writing the record's `written` fields, and returns the
-- record's flat field/value list. The event is appended first: it is the only write that can
-- fail (an id not above the stream's last), and a failed script must leave nothing written.
local function commit(event_type, r, written)
  local t = redis.call('TIME')
  local now = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
  local rev = string.format('%d', (tonumber(redis.call('GET', KEYS[2])) or 0) + 1)
  r.revision = rev
  r.create_time = r.create_time or now
  r.update_time = now
  r.updated_by = ARGV[4]
  local record = {}
  for _, field in ipairs(FIELDS) do
    record[#record + 1] = field
    record[#record + 1] = r[field] or ''
  end
  -- The history mark: chained from the previous one, with this change's random nonce (the
  -- epoch candidate), so that no other history reaches the same mark at this revision.
  local prev = redis.call('HGET', KEYS[4], 'chain') or ''
  local chain = string.sub(redis.sha1hex(prev .. ':' .. ARGV[2] .. ':' .. rev), 1, 16)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], rev .. '-0', 'type', event_type,
             'prev', prev, 'chain', chain, unpack(record))
  redis.call('SET', KEYS[2], rev)
  local update = {}
  for _, field in ipairs(written) do
    update[#update + 1] = field
    update[#update + 1] = r[field] or ''
  end
  redis.call('HSET', KEYS[1], unpack(update))
  redis.call('HSET', KEYS[4], 'chain', chain)
  redis.call('HSETNX', KEYS[4], 'epoch', ARGV[2])
  redis.call('ZADD', KEYS[5], rev, rev)
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(HISTORY_PER_TOKEN + 1))
  return record
end
)lua";

constexpr absl::string_view kCreateBody = R"lua(
local id = ARGV[5]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('TOKEN_ALREADY_EXISTS ' .. id)
end
local record = commit('CREATED', {id = id, account_id = ARGV[6], name = ARGV[7],
                                  description = ARGV[8], state = 'ACTIVE', state_reason = '',
                                  secret_sha256 = ARGV[9]}, FIELDS)
redis.call('ZADD', index('all'), 0, id)
redis.call('ZADD', index('live'), 0, id)
redis.call('ZADD', index('state:ACTIVE'), 0, id)
redis.call('ZADD', index('acct:' .. ARGV[6]), 0, id)
return record
)lua";

constexpr absl::string_view kApplyBody = R"lua(
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then
  return redis.error_reply('TOKEN_NOT_FOUND ' .. KEYS[1])
end
local r = {}
for i = 1, #fields, 2 do
  r[fields[i]] = fields[i + 1]
end
local from = r.state
local to = ({ENABLE = 'ACTIVE', DISABLE = 'DISABLED', DELETE = 'DELETED'})[ARGV[5]]
if from == 'DELETED' then
  return redis.error_reply('TOKEN_DELETED ' .. r.id)
end
if to == nil or (from ~= 'ACTIVE' and from ~= 'DISABLED') then
  return redis.error_reply('STORE_CORRUPT transition ' .. tostring(ARGV[5]) .. ' of state ' ..
                           tostring(from) .. ' in ' .. KEYS[1])
end
if from == to then
  local code = to == 'ACTIVE' and 'TOKEN_ALREADY_ACTIVE ' or 'TOKEN_ALREADY_DISABLED '
  return redis.error_reply(code .. r.id)
end
if ARGV[6] ~= '0' and ARGV[6] ~= r.revision then
  return redis.error_reply('REVISION_MISMATCH ' .. r.revision)
end
r.state = to
r.state_reason = ARGV[7]
local event_type = ({ACTIVE = 'ENABLED', DISABLED = 'DISABLED', DELETED = 'DELETED'})[to]
local record = commit(event_type, r, CHANGED)
redis.call('ZREM', index('state:' .. from), r.id)
redis.call('ZADD', index('state:' .. to), 0, r.id)
if to == 'DELETED' then
  redis.call('ZREM', index('live'), r.id)
end
return {from, record}
)lua";

constexpr absl::string_view kGetBody = R"lua(
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then
  return redis.error_reply('TOKEN_NOT_FOUND ' .. KEYS[1])
end
return {redis.call('GET', KEYS[2]) or '0', fields}
)lua";

constexpr absl::string_view kListBody = R"lua(
local page_size = tonumber(ARGV[3])
local scan_limit = tonumber(ARGV[4])
local want_state = ARGV[5]
local with_deleted = ARGV[6] == '1'
local meta = redis.call('HMGET', KEYS[3], 'epoch', 'chain')
local out = {redis.call('GET', KEYS[2]) or '0', meta[1] or '', meta[2] or '', ''}
local start = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local found, scanned, last = 0, 0, nil
while true do
  -- One more than we may examine: seeing it tells whether the index goes on.
  local want = math.min(page_size - found, scan_limit - scanned) + 1
  local ids = redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, want)
  for _, id in ipairs(ids) do
    if found == page_size or scanned == scan_limit then
      out[4] = last
      return out
    end
    scanned = scanned + 1
    last = id
    local fields = redis.call('HGETALL', ARGV[1] .. ':t:' .. id)
    local state = nil
    for i = 1, #fields, 2 do
      if fields[i] == 'state' then state = fields[i + 1] end
    end
    local match
    if want_state ~= '' then
      match = state == want_state
    else
      match = state ~= nil and (with_deleted or state ~= 'DELETED')
    end
    if match then
      found = found + 1
      out[#out + 1] = fields
    end
  end
  if #ids < want then
    return out
  end
  start = '(' .. last
end
)lua";

constexpr absl::string_view kScanIdsBody = R"lua(
local meta = redis.call('HMGET', KEYS[3], 'epoch', 'chain')
local start = ARGV[1] == '' and '-' or '(' .. ARGV[1]
local stop = ARGV[2] == '' and '+' or '[' .. ARGV[2]
local ids = redis.call('ZRANGE', KEYS[1], start, stop, 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]) + 1)
return {redis.call('GET', KEYS[2]) or '0', meta[1] or '', meta[2] or '', ids}
)lua";

constexpr absl::string_view kSplitIdsBody = R"lua(
local count = redis.call('ZCARD', KEYS[1])
local parts = tonumber(ARGV[1])
local ids = {}
for i = 1, parts - 1 do
  local rank = math.floor(count * i / parts) - 1
  if rank >= 0 then
    local id = redis.call('ZRANGE', KEYS[1], rank, rank)[1]
    if id ~= nil and id ~= ids[#ids] then
      ids[#ids + 1] = id
    end
  end
end
return ids
)lua";

constexpr absl::string_view kReadHistoryBody = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('TOKEN_NOT_FOUND ' .. KEYS[1])
end
local limit = tonumber(ARGV[2])
local upper = ARGV[1] == '0' and '+inf' or '(' .. ARGV[1]
-- One more than the page: whether its event exists tells whether the history goes on.
local revisions = redis.call('ZRANGE', KEYS[2], upper, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0,
                             limit + 1)
local more, entries = '0', {}
for i, rev in ipairs(revisions) do
  local entry = redis.call('XRANGE', KEYS[3], rev .. '-0', rev .. '-0')
  if #entry == 0 then
    break
  end
  if i > limit then
    more = '1'
    break
  end
  entries[i] = entry[1]
end
return {more, entries}
)lua";

constexpr absl::string_view kReadHeadBody = R"lua(
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'chain')
return {redis.call('GET', KEYS[1]) or '0', meta[1] or '', meta[2] or ''}
)lua";

const RedisScript* NewScript(absl::string_view shebang, absl::string_view prelude,
                             absl::string_view body) {
  return new RedisScript(absl::StrCat(shebang, prelude, body));
}

// The change prelude, with the history bound of the TokenStore contract.
std::string ChangePrelude() {
  return absl::StrCat("local HISTORY_PER_TOKEN = ", kMaxHistoryPerToken, "\n", kChangePrelude);
}

}  // namespace

const RedisScript& CreateTokenScript() {
  static const RedisScript* const script = NewScript(kWriteShebang, ChangePrelude(), kCreateBody);
  return *script;
}

const RedisScript& ApplyTransitionScript() {
  static const RedisScript* const script = NewScript(kWriteShebang, ChangePrelude(), kApplyBody);
  return *script;
}

const RedisScript& GetTokenScript() {
  static const RedisScript* const script = NewScript(kReadOnlyShebang, "", kGetBody);
  return *script;
}

const RedisScript& ListTokensScript() {
  static const RedisScript* const script = NewScript(kReadOnlyShebang, "", kListBody);
  return *script;
}

const RedisScript& ScanIdsScript() {
  static const RedisScript* const script = NewScript(kReadOnlyShebang, "", kScanIdsBody);
  return *script;
}

const RedisScript& SplitIdsScript() {
  static const RedisScript* const script = NewScript(kReadOnlyShebang, "", kSplitIdsBody);
  return *script;
}

const RedisScript& ReadHistoryScript() {
  static const RedisScript* const script = NewScript(kReadOnlyShebang, "", kReadHistoryBody);
  return *script;
}

const RedisScript& ReadHeadScript() {
  static const RedisScript* const script = NewScript(kReadOnlyShebang, "", kReadHeadBody);
  return *script;
}

}  // namespace tokenstatus
