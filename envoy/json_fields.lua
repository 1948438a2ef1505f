-- Unknown JSON fields get a 400 naming the field and the valid ones, before the transcoder
-- (which drops them silently: {"qeury": "x"} became "query must not be empty", {"limt": 1}
-- the default limit). MESSAGES, EXACT and PATTERNS are generated from the descriptor set
-- (tools/ragline_stack/json_fields.py): per REST binding the message its body is parsed
-- into, per message the names it accepts (snake_case and camelCase) and, for message-typed
-- fields, the message to look into; 0 marks a field not looked into (scalars, maps, Struct).
-- A binding without a body lists its query parameters instead: any body field is unknown.
--
-- One pass over the body: escapes are dropped first (string.gsub, in C), so every '"'
-- delimits a string; strings are skipped with a plain find; a string right after '{' or ','
-- in an object is a key. Malformed JSON is left to the transcoder.

local function binding(method, path)
  local route = EXACT[method .. " " .. path]
  if route ~= nil then
    return route
  end
  for _, p in ipairs(PATTERNS) do
    if p.method == method and string.find(path, p.path) then
      return p.route
    end
  end
  return nil
end

-- The first unknown field: its path (documents[0].titel) and the names valid there.
local function first_unknown(s, root)
  if string.find(s, "\\", 1, true) then
    s = string.gsub(s, "\\.", "")
  end
  local kinds, schemas, keys, counts = {}, {}, {}, {}
  local depth, i = 0, 1
  local expect_key, pending = false, nil
  while true do
    local j = string.find(s, '[{}%[%]",]', i)
    if j == nil then
      return nil
    end
    local c = string.byte(s, j)
    if c == 34 then -- a string
      local k = string.find(s, '"', j + 1, true)
      if k == nil then
        return nil
      end
      if expect_key then
        expect_key = false
        local key = string.sub(s, j + 1, k - 1)
        keys[depth] = key
        local schema = schemas[depth]
        if schema ~= nil then
          pending = schema.fields[key]
          if pending == nil then
            local path = ""
            for d = 1, depth - 1 do
              if kinds[d] == "a" then
                path = path .. "[" .. counts[d] .. "]"
              else
                path = path .. (path == "" and "" or ".") .. keys[d]
              end
            end
            path = path .. (path == "" and "" or ".") .. key
            return path, schema.names
          end
        end
      end
      i = k + 1
    elseif c == 123 or c == 91 then -- { or [
      local schema = nil
      if depth == 0 then
        schema = root
      elseif kinds[depth] == "a" then
        schema = schemas[depth]
      elseif pending ~= nil and pending ~= 0 then
        schema = MESSAGES[pending]
      end
      if c == 91 and depth > 0 and kinds[depth] == "a" then
        schema = nil -- nested arrays are never messages
      end
      depth = depth + 1
      kinds[depth] = c == 123 and "o" or "a"
      schemas[depth] = schema
      counts[depth] = 0
      expect_key = c == 123
      pending = nil
      i = j + 1
    elseif c == 44 then -- ,
      if kinds[depth] == "a" then
        counts[depth] = counts[depth] + 1
      else
        expect_key = true
      end
      pending = nil
      i = j + 1
    else -- } or ]
      depth = depth - 1
      if depth <= 0 then
        return nil
      end
      expect_key, pending = false, nil
      i = j + 1
    end
  end
end

local function shown(path)
  if #path > 64 then
    return string.sub(path, 1, 64) .. "..."
  end
  return path
end

-- Returns the 400's message and the field's path, or nil when every field is known.
local function unknown_json_field(method, path, s)
  path = string.match(path, "^[^?]*")
  local route = binding(method, path)
  if route == nil then
    return nil
  end
  if route.query ~= nil then
    if not string.find(s, '^%s*{%s*"') then
      return nil -- no field in it (empty, "{}"): nothing the caller could have meant
    end
    local key = string.match(s, '^%s*{%s*"([^"\\]*)"') or ""
    return 'unknown field "' .. shown(key) .. '": ' .. method .. " " .. path
      .. " takes no JSON body; its query parameters: " .. route.query, key
  end
  local field, names = first_unknown(s, MESSAGES[route.message])
  if field == nil then
    return nil
  end
  return 'unknown field "' .. shown(field) .. '"; valid fields here: ' .. names, field
end
