-- W5: an RFC 8693 token exchange (POST {prefix}token) of the user token in $TOKEN for the
-- permission token of service `example`, the form-body twin of W2's authorize.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
  .. "&subject_token=" .. os.getenv("TOKEN")
  .. "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&audience=example"
