-- Geo enrichment from the `geo` HTTP lookup (pipelines/enrich-plays.yaml). ctx.lookup looks
-- synchronous; on a cache miss the call is suspended while the request is in flight and the
-- worker goes on with other plays.
local M = {}

-- Adds the viewing region and currency of the play's country (nil for a country the service
-- does not know: it answered 404).
function M.add_region(event, ctx)
  local g = ctx.lookup("geo", event.country)
  if g then
    event.region = g.region
    event.currency = g.currency
  else
    event.region = "unknown"
    ctx.count("geo.unknown")
  end
  return event
end

return M
