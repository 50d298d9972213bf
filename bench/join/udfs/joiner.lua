-- Merge for bench/join/join.yaml: one output event per (impression, play) pair.
local M = {}

function M.merge(lefts, play, ctx)
  if #lefts == 0 then return nil end
  local out = {}
  for i, imp in ipairs(lefts) do
    out[i] = { impression_id = imp.impression_id, event_id = play.event_id,
               profile_id = play.profile_id, title_id = play.title_id,
               imp_ts = imp.ts, play_ts = play.ts, row = imp.row, rank = imp.rank, page = imp.page }
  end
  return out
end

return M
