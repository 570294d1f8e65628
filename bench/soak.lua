-- bench/soak.lua: the mixed traffic of bench/soak.sh, for wrk 4.
--
--   wrk -t2 -c256 -d600s --timeout 5s -s bench/soak.lua http://127.0.0.1:18090 -- TOKENS_FILE [WEIGHTS]
--
-- TOKENS_FILE holds one user token a line; WEIGHTS is "check/authorize/public-key/anonymous"
-- (default 50/20/10/20). Each request is drawn at random with these weights:
--   check      GET /auth/check                      auth-token: <a user's token, rotating>
--   authorize  GET /auth/authorize?service=example  auth-token: <a user's token, rotating>
--   pubkey     GET /auth/public-key
--   anon       GET /auth/check                      (no token)
--
-- wrk tells response() neither the connection nor the request an answer belongs to, so answers
-- are sorted by what they say, which also checks that they are right:
--   2xx with "authenticated":true       check      (right)
--   2xx with "authenticated":false      anon       (an authenticated check answered like this is
--                                                    wrong; seen as more such answers than anonymous
--                                                    requests sent, see `wrong_check` below)
--   2xx with "permissions" and "token"  authorize  (right)
--   2xx with "permissions" only         authorize  (wrong: the token was refused)
--   2xx starting with -----BEGIN        pubkey     (right)
--   any other 2xx                       other2xx   (wrong)
--   not 2xx                             by status and the start of the body; bench/soak.sh
--                                       names the route from the server's /metrics.
-- done() prints one "SOAK ..." line per fact, for bench/soak.sh to parse.

local KINDS = { "check", "authorize", "pubkey", "anon" }

local threads = {}
local id_counter = 0

function setup(thread)
  id_counter = id_counter + 1
  thread:set("id", id_counter)
  table.insert(threads, thread)
end

-- Per thread (each wrk thread has its own Lua state).
local reqs = {}            -- kind -> list of prepared requests
local cum = {}             -- cumulative weights, parallel to KINDS
local total_weight = 0
local rr = {}              -- kind -> next index (round robin over the users' tokens)
sent = { check = 0, authorize = 0, pubkey = 0, anon = 0 }
answers = { check = 0, anon = 0, authorize = 0, authorize_denied = 0, pubkey = 0, other2xx = 0 }
non2xx = {}                -- "status<TAB>start of body" -> count
statuses = {}              -- status -> count

local function split(s, sep)
  local out = {}
  for part in string.gmatch(s, "[^" .. sep .. "]+") do table.insert(out, part) end
  return out
end

function init(args)
  local path = args[1]
  if path == nil then error("soak.lua: give the tokens file: -- TOKENS_FILE [WEIGHTS]") end
  local tokens = {}
  for line in io.lines(path) do
    if #line > 0 then table.insert(tokens, line) end
  end
  if #tokens == 0 then error("soak.lua: no tokens in " .. path) end
  local weights = split(args[2] or "50/20/10/20", "/")
  for i, kind in ipairs(KINDS) do
    total_weight = total_weight + tonumber(weights[i] or "0")
    cum[i] = total_weight
  end
  reqs.check, reqs.authorize = {}, {}
  for _, t in ipairs(tokens) do
    table.insert(reqs.check, wrk.format("GET", "/auth/check", { ["auth-token"] = t }))
    table.insert(reqs.authorize,
      wrk.format("GET", "/auth/authorize?service=example", { ["auth-token"] = t }))
  end
  reqs.pubkey = { wrk.format("GET", "/auth/public-key") }
  reqs.anon = { wrk.format("GET", "/auth/check") }
  -- Different streams per thread; different starting users too.
  local id = tonumber(id) or 1
  math.randomseed(os.time() * 1000 + id * 7919)
  for _, kind in ipairs(KINDS) do rr[kind] = (id * 17) % #reqs[kind] end
end

function request()
  local r = math.random() * total_weight
  local kind = KINDS[4]
  for i = 1, 4 do
    if r < cum[i] then kind = KINDS[i]; break end
  end
  sent[kind] = sent[kind] + 1
  local list = reqs[kind]
  local i = rr[kind] % #list + 1
  rr[kind] = i
  return list[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 then
    body = body or ""
    if string.find(body, '"authenticated":true', 1, true) then
      answers.check = answers.check + 1
    elseif string.find(body, '"authenticated":false', 1, true) then
      answers.anon = answers.anon + 1
    elseif string.find(body, '"permissions"', 1, true) then
      if string.find(body, '"token"', 1, true) then
        answers.authorize = answers.authorize + 1
      else
        answers.authorize_denied = answers.authorize_denied + 1
      end
    elseif string.sub(body, 1, 10) == "-----BEGIN" then
      answers.pubkey = answers.pubkey + 1
    else
      answers.other2xx = answers.other2xx + 1
    end
  else
    local snippet = string.gsub(string.sub(body or "", 1, 100), "%s+", " ")
    local key = tostring(status) .. "\t" .. snippet
    non2xx[key] = (non2xx[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local s = { check = 0, authorize = 0, pubkey = 0, anon = 0 }
  local a = { check = 0, anon = 0, authorize = 0, authorize_denied = 0, pubkey = 0, other2xx = 0 }
  local n, st = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("sent")) do s[k] = s[k] + v end
    for k, v in pairs(t:get("answers")) do a[k] = a[k] + v end
    for k, v in pairs(t:get("non2xx")) do n[k] = (n[k] or 0) + v end
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
  end
  local non2xx_total = 0
  for _, v in pairs(n) do non2xx_total = non2xx_total + v end
  local e = summary.errors
  print(string.format("SOAK requests %d", summary.requests))
  print(string.format("SOAK duration_us %d", summary.duration))
  print(string.format("SOAK bytes %d", summary.bytes))
  print(string.format("SOAK errors connect=%d read=%d write=%d timeout=%d status=%d",
    e.connect, e.read, e.write, e.timeout, e.status))
  print(string.format("SOAK latency_us p50=%d p99=%d p999=%d max=%d mean=%.0f",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean))
  for _, kind in ipairs(KINDS) do print(string.format("SOAK sent %s %d", kind, s[kind])) end
  for _, kind in ipairs({ "check", "anon", "authorize", "authorize_denied", "pubkey", "other2xx" }) do
    print(string.format("SOAK answer %s %d", kind, a[kind]))
  end
  for code, v in pairs(st) do print(string.format("SOAK status %s %d", tostring(code), v)) end
  print(string.format("SOAK non2xx %d", non2xx_total))
  for k, v in pairs(n) do print(string.format("SOAK non2xx_detail %d\t%s", v, k)) end
  -- Authenticated checks answered as anonymous: more "authenticated":false answers than
  -- anonymous requests sent. (A few such answers could hide behind the anonymous requests still
  -- in flight when wrk stopped; never more than the connections.)
  local wrong_check = a.anon - s.anon
  if wrong_check < 0 then wrong_check = 0 end
  print(string.format("SOAK wrong_check %d", wrong_check))
end
