-- Service topology (Netflix's three-stage flow-log pipeline): which app talks to which, when
-- calls go through load balancers that hide the destination.
local M = {}

local function via_load_balancer(ip)
  -- The load balancers' subnet: a network team knows it; the flows do not say.
  return ip:sub(1, 5) == "10.0."
end

-- Arrivals at a service are keyed by the hop that connects them to their callers: the load
-- balancer they came through, or (a direct call) the service's own address.
function M.hop(flow, ctx)
  flow.hop = via_load_balancer(flow.remote_ip) and flow.remote_ip or flow.local_ip
  return flow
end

-- merge(arrivals, call, ctx): the arrivals behind the address the call went to name its
-- destination app. Lonely arrivals (call == nil) say nothing new.
function M.resolve(arrivals, call, ctx)
  if call == nil then return nil end
  local dst = #arrivals > 0 and arrivals[#arrivals].app or "unresolved"
  if dst == "unresolved" then ctx.count("unresolved_calls", 1) end
  return { src = call.app, dst = dst, flows = call.flows, bytes = call.bytes,
           via = via_load_balancer(call.remote_ip) and call.remote_ip or nil }
end

return M
