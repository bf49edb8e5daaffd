-- nexthop_follow.lua: when the best path of prefix A changes nexthop,
-- re-announce prefix B with the same nexthop (for example a service
-- prefix that must follow an anycast or upstream route). When A has no
-- best path, B is withdrawn.
local bgp = require("bgp")

local FOLLOW = "203.0.113.0/24"  -- A
local ANNOUNCE = "198.51.100.0/24" -- B
local COMMUNITIES = { "65000:100" }

function on_best_path(ev)
  if ev.prefix ~= FOLLOW then return end
  if ev.withdrawal then
    if bgp.state.nexthop then
      bgp.withdraw(ANNOUNCE)
      bgp.state.nexthop = nil
    end
  elseif ev.nexthop ~= bgp.state.nexthop then
    bgp.announce { prefix = ANNOUNCE, nexthop = ev.nexthop, communities = COMMUNITIES }
    bgp.state.nexthop = ev.nexthop
  end
end
