-- Browsers cannot set an Authorization header on a WebSocket. A client may offer its key
-- or JWT as the subprotocol "ragline.bearer.<token>" beside the real one
-- ("ragline.chat.v1"); this moves it into Authorization, so jwt_authn, RBAC and ext_authz
-- check it like any bearer, and forwards only the real subprotocols (the service echoes
-- one of those). A request that also sends Authorization keeps that one.
--
-- The socket outlives that check, so the chat service checks the credential again for
-- every message (ragline_chat.ws_guard): the Authorization value is also forwarded as
-- x-ragline-ws-credential, which ext_authz and jwt_authn leave alone (a client's own copy
-- was stripped at the edge, and is replaced here).
local PREFIX = "ragline.bearer."
local CREDENTIAL = "x-ragline-ws-credential"

local function move_subprotocol_token(headers)
  local count = headers:getNumValues("sec-websocket-protocol")
  if count == 0 then
    return
  end
  local kept, token = {}, nil
  for i = 0, count - 1 do
    for item in string.gmatch(headers:getAtIndex("sec-websocket-protocol", i), "[^,]+") do
      local offered = item:match("^%s*(.-)%s*$")
      if offered:sub(1, #PREFIX) == PREFIX then
        token = offered:sub(#PREFIX + 1)
      elseif offered ~= "" then
        kept[#kept + 1] = offered
      end
    end
  end
  if token == nil then
    return
  end
  headers:remove("sec-websocket-protocol")
  if #kept > 0 then
    headers:add("sec-websocket-protocol", table.concat(kept, ", "))
  end
  if token ~= "" and headers:get("authorization") == nil then
    headers:add("authorization", "Bearer " .. token)
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  move_subprotocol_token(headers)
  headers:remove(CREDENTIAL)
  local credential = headers:get("authorization")
  if credential ~= nil then
    headers:add(CREDENTIAL, credential)
  end
end
