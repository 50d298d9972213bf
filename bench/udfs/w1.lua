-- Workload W1 of BENCHMARKS.md as Lua UDFs.
local M = {}

function M.keep(event, ctx)
  return event.event_type == "play" and (event.duration_ms or 0) > 1000
end

function M.shape(event, ctx)
  return { profile_id = event.profile_id, title_id = event.title_id, ts = event.ts,
           country = event.country, os = event.client.os }
end

return M
