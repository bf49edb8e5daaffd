-- maintenance.lua: "show route" less maintenance checks. Snapshot the
-- best paths before a maintenance window, then report what changed:
-- prefixes added, removed, and those whose nexthop or AS path moved.
-- Commands come over BGP: the ops host (OPS_PEER) announces MARKER with
-- community 65000:1001 to take a snapshot and 65000:1002 for the report.
-- A report is also sent by itself WINDOW seconds after a snapshot.
-- REPORT_URL must be allowed: [edbgpd.notify] (or a grant for this
-- script) http-allow = ["https://hooks.example.net/maintenance"].
local bgp = require("bgp")

local OPS_PEER = "127.0.0.9"
local MARKER = "192.0.2.255/32"
local SNAPSHOT, REPORT = "65000:1001", "65000:1002"
local WINDOW = 3600
local REPORT_URL = "https://hooks.example.net/maintenance"
local MAX_LISTED = 50

bgp.state.rib = bgp.state.rib or {} -- prefix -> "nexthop|as path"
local rib = bgp.state.rib

local function has(ev, community)
  for _, c in ipairs(ev.communities) do if c == community then return true end end
  return false
end

local report -- below; the snapshot's timer calls it

local function snapshot()
  local copy, n = {}, 0
  for prefix, v in pairs(rib) do copy[prefix] = v; n = n + 1 end
  bgp.state.snapshot = copy
  bgp.state.taken = bgp.now()
  bgp.log("info", "maintenance: snapshot of", n, "best paths")
  if bgp.state.timer then bgp.cancel(bgp.state.timer) end
  bgp.state.timer = bgp.after(WINDOW, function() bgp.state.timer = nil; report("window over") end)
end

local function sorted(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

report = function(why)
  local before = bgp.state.snapshot
  if before == nil then bgp.log("warn", "maintenance: report asked, no snapshot"); return end
  local r = { reason = why, since = bgp.state.taken, added = {}, removed = {}, changed = {} }
  for _, p in ipairs(sorted(rib)) do
    if before[p] == nil then r.added[#r.added + 1] = p
    elseif before[p] ~= rib[p] then r.changed[#r.changed + 1] = { prefix = p, before = before[p], after = rib[p] } end
  end
  for _, p in ipairs(sorted(before)) do
    if rib[p] == nil then r.removed[#r.removed + 1] = p end
  end
  r.counts = { added = #r.added, removed = #r.removed, changed = #r.changed }
  for _, k in ipairs({ "added", "removed", "changed" }) do
    while #r[k] > MAX_LISTED do table.remove(r[k]) end
  end
  bgp.log("info", "maintenance report:", bgp.json_encode(r.counts))
  bgp.http_post(REPORT_URL, r)
end

function on_best_path(ev)
  if ev.prefix == MARKER and ev.peer.address == OPS_PEER then
    if not ev.withdrawal and has(ev, SNAPSHOT) then snapshot() end
    if not ev.withdrawal and has(ev, REPORT) then report("asked") end
    return
  end
  rib[ev.prefix] = (not ev.withdrawal) and (ev.nexthop .. "|" .. ev.as_path_string) or nil
end
