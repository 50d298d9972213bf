-- W1 in Lua 5.4 + lua-cjson: decode, test, build table, encode.
local cjson = require "cjson"
local null = cjson.null
local write = io.write
for line in io.lines() do
  local e = cjson.decode(line)
  local d = e.duration_ms
  if d == null then d = 0 end
  if e.event_type == "play" and d > 1000 then
    write(cjson.encode({ profile_id = e.profile_id, title_id = e.title_id, ts = e.ts,
                         country = e.country, os = e.client.os }), "\n")
  end
end
