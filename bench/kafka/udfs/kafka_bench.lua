-- The Kafka benchmark's UDF: a map that adds one field.
local M = {}

function M.add_field(event, ctx)
  event.pipeline = "sluice"
  return event
end

return M
