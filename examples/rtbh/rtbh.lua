-- rtbh.lua: BGP as an API, remotely triggered blackhole. A customer
-- (TRIGGER_PEER) announces a host route tagged TRIGGER_COMMUNITY; edbgpd
-- announces that /32 (or /128) itself with the BLACKHOLE community
-- (65535:666), for the upstreams, and withdraws it when the trigger goes.
--
-- Once our own route is the best path, the customer's withdrawal changes
-- no best path, so there is no event for it: a timer checks what the
-- customer still sends (bgp.received) every CHECK_EVERY seconds.
local bgp = require("bgp")

local TRIGGER_PEER = "127.0.0.2"
local TRIGGER_COMMUNITY = "65000:666"
local CHECK_EVERY = 2
local HOST_ROUTE = { ipv4 = 32, ipv6 = 128 }

bgp.state.active = bgp.state.active or {} -- prefix -> true while blackholed
local active = bgp.state.active

local function tagged(path)
  if path == nil then return false end
  for _, c in ipairs(path.communities) do
    if c == TRIGGER_COMMUNITY then return true end
  end
  return false
end

local function stop(prefix)
  bgp.withdraw(prefix)
  active[prefix] = nil
end

function on_best_path(ev)
  local p = bgp.parse_prefix(ev.prefix)
  if p.length ~= HOST_ROUTE[p.family] or ev.peer.address ~= TRIGGER_PEER then return end
  if not ev.withdrawal and tagged(ev) and not active[ev.prefix] then
    bgp.announce { prefix = ev.prefix, communities = { "65535:666" } }
    active[ev.prefix] = true
  elseif active[ev.prefix] and (ev.withdrawal or not tagged(ev)) then
    stop(ev.prefix)
  end
end

function on_load()
  bgp.every(CHECK_EVERY, function()
    for prefix in pairs(active) do
      if not tagged(bgp.received(TRIGGER_PEER, prefix)) then stop(prefix) end
    end
  end)
end
