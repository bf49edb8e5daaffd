-- critical_routes.lua: notify a webhook when the default route or a
-- critical prefix loses its best path or changes nexthop.
-- The URL must be allowed in the config: [edbgpd.grants."critical_routes.lua"]
-- (or [edbgpd.notify]) http-allow = ["https://hooks.example.net/bgp"].
local bgp = require("bgp")

local WEBHOOK = "https://hooks.example.net/bgp"
local CRITICAL = { ["0.0.0.0/0"] = true, ["::/0"] = true, ["192.0.2.0/24"] = true }

bgp.state.nexthops = bgp.state.nexthops or {} -- prefix -> last nexthop
local nexthops = bgp.state.nexthops

local function notify(kind, ev, old)
  bgp.http_post(WEBHOOK, { event = kind, prefix = ev.prefix, nexthop = ev.nexthop, old_nexthop = old,
                           time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(bgp.now())) },
    function(r) if not r.ok then bgp.log("error", "webhook failed:", r.status, r.error) end end)
end

function on_best_path(ev)
  if not CRITICAL[ev.prefix] then return end
  local old = nexthops[ev.prefix]
  if ev.withdrawal then
    notify("lost", ev, old)
    nexthops[ev.prefix] = nil
  elseif old ~= nil and old ~= ev.nexthop then
    notify("nexthop-changed", ev, old)
    nexthops[ev.prefix] = ev.nexthop
  else
    nexthops[ev.prefix] = ev.nexthop
  end
end
