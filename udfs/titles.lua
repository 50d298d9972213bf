-- Title enrichment from the `titles` lookup (pipelines/enrich-plays.yaml).
local M = {}

-- Adds the title's name, genre and year; titles not in the table are marked unknown.
function M.add_title(event, ctx)
  local t = ctx.lookup("titles", event.title_id)   -- 7 and "7" are the same key
  if t then
    event.title = t.name
    event.genre = t.genre
    event.year = tonumber(t.year)                  -- CSV values are strings
  else
    event.title = "unknown"
    ctx.count("titles.unknown")
  end
  return event
end

return M
