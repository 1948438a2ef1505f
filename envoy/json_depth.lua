-- A JSON body nested deeper than MAX_DEPTH levels gets a 400 here, before the transcoder:
-- its protobuf parser gives up past ~33 levels of Struct (search and chat filters, ingest
-- metadata) with a 500 that names its internals. MAX_DEPTH and REPLY_NAMESPACE are
-- prepended by the config renderer; the reply's reason goes in dynamic metadata, where the
-- local reply mapper finds it. A body within the depth is then checked for unknown fields
-- (envoy/json_fields.lua, prepended with its table).
--
-- Escapes, then strings, then everything but brackets are dropped (string.gsub, in C), so
-- a bracket inside a string never counts; the loop over what remains stops at the limit.

local function deeper_than(s, limit)
  local opens = select(2, string.gsub(s, "[%[{]", ""))
  if opens <= limit then
    return false
  end
  s = string.gsub(s, "\\.", "")
  s = string.gsub(s, '"[^"]*"', "")
  s = string.gsub(s, "[^%[%]{}]", "")
  local depth = 0
  for i = 1, #s do
    local c = string.byte(s, i)
    if c == 91 or c == 123 then
      depth = depth + 1
      if depth > limit then
        return true
      end
    else
      depth = depth - 1
    end
  end
  return false
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local method = headers:get(":method")
  if method ~= "POST" and method ~= "PUT" and method ~= "PATCH" then
    -- A body on GET/DELETE only when declared: an upgrade (the chat WebSocket) has none
    -- and its stream must not be waited for.
    local length = headers:get("content-length")
    if length == nil or length == "0" then
      return
    end
  end
  local content_type = headers:get("content-type") or ""
  if string.find(content_type, "application/grpc", 1, true) == 1 then
    return
  end
  -- Read before body(): the headers object is not usable once the body was waited for.
  local path = headers:get(":path")
  local body = handle:body()
  if body == nil or body:length() == 0 then
    return
  end
  local s = body:getBytes(0, body:length())
  if deeper_than(s, MAX_DEPTH) then
    handle:streamInfo():dynamicMetadata():set(REPLY_NAMESPACE, "reason", "JSON_TOO_DEEP")
    handle:respond(
      { [":status"] = "400" },
      "the JSON body nests deeper than " .. MAX_DEPTH .. " levels (the limit)"
    )
    return
  end
  -- envoy/json_fields.lua, prepended by the config renderer.
  local message, field = unknown_json_field(method, path, s)
  if message ~= nil then
    local metadata = handle:streamInfo():dynamicMetadata()
    metadata:set(REPLY_NAMESPACE, "reason", "UNKNOWN_FIELD")
    metadata:set(REPLY_NAMESPACE, "field", field)
    handle:respond({ [":status"] = "400" }, message)
  end
end
