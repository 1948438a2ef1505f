-- A JSON body nested deeper than MAX_DEPTH levels gets a 400 here, before the transcoder:
-- its protobuf parser gives up past ~33 levels of Struct (search and chat filters, ingest
-- metadata) with a 500 that names its internals. MAX_DEPTH and REPLY_NAMESPACE are
-- prepended by the config renderer; the reply's reason goes in dynamic metadata, where the
-- local reply mapper finds it.
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
    return
  end
  local content_type = headers:get("content-type") or ""
  if string.find(content_type, "application/grpc", 1, true) == 1 then
    return
  end
  local body = handle:body()
  if body == nil or body:length() == 0 then
    return
  end
  if deeper_than(body:getBytes(0, body:length()), MAX_DEPTH) then
    handle:streamInfo():dynamicMetadata():set(REPLY_NAMESPACE, "reason", "JSON_TOO_DEEP")
    handle:respond(
      { [":status"] = "400" },
      "the JSON body nests deeper than " .. MAX_DEPTH .. " levels (the limit)"
    )
  end
end
