-- neighbour_watch.lua: alert when prefixes originated by a neighbour
-- network (WATCH_ASN) appear, disappear, or change their AS path.
-- Alerts go to the log and to a webhook (allow ALERT_URL in the config:
-- [edbgpd.grants."neighbour_watch.lua"] or [edbgpd.notify] http-allow;
-- set it to nil for the log only).
local bgp = require("bgp")

local WATCH_ASN = 64512
local ALERT_URL = "https://hooks.example.net/bgp"

-- prefix -> AS path string of the watched network's route; survives reloads
bgp.state.seen = bgp.state.seen or {}
local seen = bgp.state.seen

local function alert(kind, ev, old_path)
  local msg = { alert = kind, prefix = ev.prefix, as_path = ev.as_path_string, old_as_path = old_path }
  bgp.log("warn", "neighbour-watch:", kind, ev.prefix, old_path or "", "->", ev.as_path_string)
  if ALERT_URL then bgp.http_post(ALERT_URL, msg) end
end

function on_best_path(ev)
  local old = seen[ev.prefix]
  local path = ev.as_path
  local ours = not ev.withdrawal and #path > 0 and path[#path] == WATCH_ASN
  if ours and old == nil then
    alert("appeared", ev)
  elseif ours and old ~= ev.as_path_string then
    alert("path-changed", ev, old)
  elseif not ours and old ~= nil then
    alert("disappeared", ev, old)
  end
  seen[ev.prefix] = ours and ev.as_path_string or nil
end
