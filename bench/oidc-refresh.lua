-- The refresh grant (POST {prefix}token, grant_type=refresh_token) for bench/oidc.sh: the
-- refresh tokens of the file in $TOKENS (one family each, made by bench-oidc) are split between
-- wrk's threads; each request spends one and its answer's successor goes back to the pool, so
-- every connection rotates a family as fast as it is answered. wrk asks for a few requests more
-- than it has answers at the start: the file holds twice as many families as connections.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local pool = {}
function init(args)
  local threads = tonumber(os.getenv("THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("TOKENS")) do
    if i % threads == id then pool[#pool + 1] = line end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local token = table.remove(pool) or "none-left"
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&client_id=" .. os.getenv("CLIENT")
    .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  local successor = body:match('"refresh_token":"([^"]+)"')
  if successor then pool[#pool + 1] = successor end
end
