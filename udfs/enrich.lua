-- Enrichment (map UDFs): function(event, ctx) -> event, or nil to drop it.
local M = {}

local REGION = {
  US = "NA", CA = "NA", MX = "LATAM", BR = "LATAM",
  GB = "EMEA", DE = "EMEA", FR = "EMEA",
  IN = "APAC", JP = "APAC", KR = "APAC",
}

-- Adds the viewing region, whole minutes watched and a coarse engagement bucket.
function M.add_fields(event, ctx)
  event.region = REGION[event.country] or "OTHER"
  event.minutes = event.duration_ms // 60000
  if event.minutes >= 90 then
    event.engagement = "binge"
  elseif event.minutes >= 20 then
    event.engagement = "episode"
  else
    event.engagement = "sample"
  end
  ctx.count("enriched." .. event.region)
  return event
end

return M
