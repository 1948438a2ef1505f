-- POST /oauth2/token (OAuth 2.0 client credentials): RFC 6749's replies.
-- The auth service fails a token request with the RFC 6749 section 5.2 error code as its
-- ErrorInfo reason (INVALID_CLIENT, ...); the transcoder turns that into a google.rpc.Status
-- JSON with the HTTP status of the gRPC code (401, 400, 429). This script rewrites such a
-- body into {"error": "invalid_client", "error_description": "..."}, adds
-- WWW-Authenticate to a 401 (section 5.2) and Cache-Control: no-store to every reply
-- (section 5.1). The service's messages contain no double quotes.

local OAUTH_ERRORS = {
  INVALID_REQUEST = "invalid_request",
  INVALID_CLIENT = "invalid_client",
  INVALID_GRANT = "invalid_grant",
  UNAUTHORIZED_CLIENT = "unauthorized_client",
  UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type",
  INVALID_SCOPE = "invalid_scope",
  SLOW_DOWN = "slow_down",
}

function envoy_on_request(handle)
end

function envoy_on_response(handle)
  -- Headers cannot change once the body is asked for: set them all first.
  local headers = handle:headers()
  headers:replace("cache-control", "no-store")
  headers:replace("pragma", "no-cache")
  local status = tonumber(headers:get(":status"))
  if status == nil or status < 400 then
    return
  end
  if status == 401 then
    -- The only 401 of the token endpoint (section 5.2: with the scheme the client used).
    headers:replace("www-authenticate", 'Basic realm="ragline", error="invalid_client"')
  end
  headers:replace("content-type", "application/json")
  -- The new body's length differs: let Envoy frame it.
  headers:remove("content-length")
  local body = handle:body()
  if body == nil then
    return
  end
  local text = body:getBytes(0, body:length())
  local reason = string.match(text, '"reason"%s*:%s*"([A-Z_]+)"')
  local message = string.match(text, '"message"%s*:%s*"([^"]*)"') or ""
  local code = OAUTH_ERRORS[reason or ""]
  if code == nil then
    if status >= 500 then
      code = "temporarily_unavailable"
    else
      code = "invalid_request"
    end
  end
  body:setBytes('{"error":"' .. code .. '","error_description":"' .. message .. '"}')
end
