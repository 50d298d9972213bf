-- Predicates over play events (filter UDFs): function(event, ctx) -> truthy keeps the event.
local M = {}

-- A "real" play: a play event that lasted more than a minute. A null duration counts as 0.
function M.is_long_play(event, ctx)
  return event.event_type == "play" and (event.duration_ms or 0) > 60000
end

return M
