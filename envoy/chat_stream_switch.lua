-- POST /api/v1/chat with "stream": true is served by StreamChat as server-sent events.
-- The transcoder picks an RPC by path alone, so this per-route filter reads the (small,
-- already buffered) JSON body and, when its top-level "stream" field is true, rewrites the
-- path to /api/v1/chat:stream and re-matches the route (streaming timeouts apply).
-- Only top-level keys count: {"filters": {"stream": true}} or a message that mentions
-- "stream": true does not switch. It also answers 413 for chat bodies over the chat cap.

local function wants_stream(s)
  local depth, i = 0, 1
  while true do
    local j = string.find(s, '[{}%[%]"]', i)
    if j == nil then
      return false
    end
    local c = string.sub(s, j, j)
    if c == '"' then
      local k = j + 1
      while true do
        local q = string.find(s, '["\\]', k)
        if q == nil then
          return false
        end
        if string.sub(s, q, q) == "\\" then
          k = q + 2
        else
          k = q
          break
        end
      end
      local text = string.sub(s, j + 1, k - 1)
      i = k + 1
      if depth == 1 and text == "stream" then
        local value = string.match(s, "^%s*:%s*(%a+)", i)
        if value ~= nil then
          return value == "true"
        end
      end
    elseif c == "{" or c == "[" then
      depth = depth + 1
      i = j + 1
    else
      depth = depth - 1
      i = j + 1
    end
  end
end

function envoy_on_request(handle)
  if handle:headers():get(":method") ~= "POST" then
    return
  end
  local body = handle:body()
  if body == nil then
    return
  end
  local size = body:length()
  -- MAX_BODY_BYTES is prepended by the config renderer (chat_max_request_bytes).
  if size > MAX_BODY_BYTES then
    handle:respond(
      { [":status"] = "413" },
      "chat request body is " .. size .. " bytes; the limit is " .. MAX_BODY_BYTES
    )
    return
  end
  if size == 0 or handle:headers():get(":path") ~= "/api/v1/chat" then
    return
  end
  if wants_stream(body:getBytes(0, size)) then
    handle:headers():replace(":path", "/api/v1/chat:stream")
    handle:clearRouteCache()
  end
end
