-- Watch time (a map UDF), the example of the restatement walkthrough in the README.
local M = {}

-- Adds whole minutes watched.
function M.add_minutes(event, ctx)
  event.minutes = (event.duration_ms or 0) // 60000
  return event
end

return M
