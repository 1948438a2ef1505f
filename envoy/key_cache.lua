-- The gateway's API-key cache: the auth service's "allowed" for a key, reused for a moment.
--
-- Each Envoy worker thread keeps its own table (Lua state is per worker): Authorization
-- value -> identity, for at most the milliseconds the auth service allowed (`cache_ms` in
-- its ext_authz metadata: GATEWAY_KEY_CACHE_TTL, never past the key's expiry). A hit sets
-- the identity headers ext_authz would have set and marks the request so ext_authz skips
-- it; anything else (a miss, an expired entry, a scope the key lacks, a Lua error) goes to
-- ext_authz as before. Only allowed API keys are cached; denials and JWTs never are.
--
-- A miss remembers its key by x-request-id until the response, when the ext_authz
-- metadata says whether and how long to keep it (ext_authz removes Authorization, and
-- dynamic metadata would carry the key into the access log, so neither can hold it).
-- An entry's lifetime counts from when the question was asked, never from the response:
-- a slow call must not bring back a key revoked while it ran. A 401 for a key drops its
-- entry and refuses any "allowed" asked before that 401 (a revocation seen by this worker
-- is never undone by an older answer still in flight).
-- The edge regenerates x-request-id for every request (use_remote_address, no trusted
-- internal addresses, preserve_external_request_id off), so a client cannot make two
-- requests share one and swap their identities.
--
-- Set before this script: MAX_ENTRIES, SKIP_NAMESPACE, AUTHZ_NAMESPACE, JWT_NAMESPACE,
-- JWT_PAYLOAD.

local cache, cached = {}, 0
local pending, waiting = {}, 0
-- Authorization value -> when this worker last saw the auth service deny it (ms).
local denied, denials = {}, 0

-- Never answered here, so a revocation stops them at once: "api_key_only" (minting a
-- JWT, which outlives any cached answer) and "admin" (key management, any tenant's usage).
-- Both are rare; the auth service decides them every time.
local UNCACHED_SCOPES = { api_key_only = true, admin = true }

local function scope_allowed(entry, scope)
  if UNCACHED_SCOPES[scope] then
    return false
  end
  return scope == "authenticated" or entry.scopes[scope] == true
end

local function remember(rid, auth, asked)
  if waiting >= MAX_ENTRIES then
    -- Requests that never got a response (reset streams) would pile up: start over.
    pending, waiting = {}, 0
  end
  if pending[rid] == nil then
    waiting = waiting + 1
  end
  pending[rid] = { auth = auth, asked = asked }
end

-- A denial (revoked, expired, unknown key): nothing older may bring the key back here.
local function deny(auth, now)
  if cache[auth] ~= nil then
    cache[auth] = nil
    cached = cached - 1
  end
  if denials >= MAX_ENTRIES then
    denied, denials = {}, 0
  end
  if denied[auth] == nil then
    denials = denials + 1
  end
  denied[auth] = now
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local metadata = handle:streamInfo():dynamicMetadata()
  -- A token jwt_authn verified: it stays in Authorization (forward: true) for the
  -- services to verify again, and ext_authz is skipped.
  local jwt = metadata:get(JWT_NAMESPACE)
  if jwt ~= nil and jwt[JWT_PAYLOAD] ~= nil then
    metadata:set(SKIP_NAMESPACE, "verified", "jwt")
    return
  end
  local auth = headers:get("authorization")
  if auth == nil then
    return
  end
  -- The scope this route needs (route metadata); none on public routes.
  local scope = handle:metadata():get("scope")
  if scope == nil then
    return
  end
  local entry = cache[auth]
  if entry ~= nil and entry.expires <= handle:timestamp() then
    cache[auth] = nil
    cached = cached - 1
    entry = nil
  end
  if entry ~= nil and entry.identity ~= nil and scope_allowed(entry, scope) then
    -- The signed identity the services verify, minted with the cached answer.
    headers:replace("x-ragline-identity", entry.identity)
    headers:replace("x-ragline-tenant", entry.tenant)
    headers:replace("x-ragline-key-id", entry.key_id)
    headers:replace("x-ragline-scopes", entry.scopes_header)
    headers:replace("x-ragline-tier", entry.tier)
    headers:replace("x-ragline-auth", "api_key")
    headers:remove("authorization")
    -- Last, so a failure above leaves the request to ext_authz.
    metadata:set(SKIP_NAMESPACE, "verified", "api_key")
    return
  end
  local rid = headers:get("x-request-id")
  if rid ~= nil then
    -- Before ext_authz asks: the decision is at least this recent, never older.
    remember(rid, auth, handle:timestamp())
  end
end

function envoy_on_response(handle)
  if waiting == 0 then
    return
  end
  local rid = handle:requestHeaders():get("x-request-id")
  local asked = rid and pending[rid]
  if asked == nil then
    return
  end
  pending[rid] = nil
  waiting = waiting - 1
  local auth, now = asked.auth, handle:timestamp()
  local allowed = handle:streamInfo():dynamicMetadata():get(AUTHZ_NAMESPACE)
  if allowed == nil then
    -- No "allowed" metadata: ext_authz answered. A 401 (gRPC: UNAUTHENTICATED) is a
    -- key that no longer works.
    local headers = handle:headers()
    if headers:get(":status") == "401" or headers:get("grpc-status") == "16" then
      deny(auth, now)
    end
    return
  end
  if allowed.cache_ms == nil or allowed.cache_ms <= 0 then
    return
  end
  -- Counted from the question: a response slower than the TTL stores nothing.
  local expires = asked.asked + allowed.cache_ms
  local refused = denied[auth]
  if expires <= now or (refused ~= nil and asked.asked <= refused) then
    return
  end
  local scopes = {}
  for scope in string.gmatch(allowed.scopes or "", "[^,]+") do
    scopes[scope] = true
  end
  if cached >= MAX_ENTRIES then
    cache, cached = {}, 0
  end
  if cache[auth] == nil then
    cached = cached + 1
  end
  cache[auth] = {
    expires = expires,
    tenant = allowed.tenant,
    key_id = allowed.key_id,
    scopes = scopes,
    scopes_header = allowed.scopes or "",
    tier = allowed.tier,
    identity = allowed.identity,
  }
end
