-- The code grant (POST {prefix}token, grant_type=authorization_code) for bench/oidc.sh: each
-- request redeems the next code of the file in $CODES (made by bench-oidc just before), split
-- between wrk's threads; PKCE with RFC 7636's example verifier, the public client $CLIENT.
-- A code works once: when the file runs out, requests fail (wrk counts them as non-2xx).
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local codes, next_code = {}, 1
function init(args)
  local threads = tonumber(os.getenv("THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("CODES")) do
    if i % threads == id then codes[#codes + 1] = line end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

local redirect = os.getenv("REDIRECT"):gsub(":", "%%3A"):gsub("/", "%%2F")
function request()
  local code = codes[next_code] or "spent"
  next_code = next_code + 1
  return wrk.format(nil, nil, nil, "grant_type=authorization_code&client_id=" .. os.getenv("CLIENT")
    .. "&code=" .. code .. "&redirect_uri=" .. redirect
    .. "&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
end
