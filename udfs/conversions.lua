-- Play conversion (Netflix's co-process joiner): each play with the impressions that led to it.
local M = {}

-- merge(lefts, right, ctx): lefts are the impressions of the same profile and title in the hour
-- before the play (sorted by time), right is the play.
function M.attribute(impressions, play, ctx)
  local first, last = impressions[1], impressions[#impressions]
  local pages = array()
  for i, imp in ipairs(impressions) do pages[#pages + 1] = imp.page end
  ctx.count("conversions", 1)
  return {
    event_id = play.event_id,
    profile_id = play.profile_id,
    title_id = play.title_id,
    play_ts = play.ts,
    impressions = #impressions,
    pages = pages,
    first_impression_ts = first.ts,
    last_impression_id = last.impression_id,
    seconds_to_play = (play.ts - last.ts) // 1000,
  }
end

return M
