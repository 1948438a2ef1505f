-- HEAD /health is answered like GET /health, without the body. The transcoder knows only
-- GET /health, so the method becomes GET; Envoy would then send the GET's body to the HEAD
-- request (the client reads it as the start of the next response), so it is dropped here.
-- The response may be matched to the GET route: both routes run this script, and the
-- request's dynamic metadata (HEAD_NAMESPACE, prepended by the renderer) says it was HEAD.

function envoy_on_request(handle)
  if handle:headers():get(":method") == "HEAD" then
    handle:streamInfo():dynamicMetadata():set(HEAD_NAMESPACE, "head", true)
    handle:headers():replace(":method", "GET")
  end
end

function envoy_on_response(handle)
  if handle:streamInfo():dynamicMetadata():get(HEAD_NAMESPACE) ~= nil then
    local body = handle:body()
    if body ~= nil then
      body:setBytes("")
    end
  end
end
