-- Counts best-path changes per peer, minute by minute, and lists the
-- peers by changes when unloaded. Run it on a collector's history:
--   edbgpd test examples/collector-count/collector_count.lua updates.20160811.1600.gz
-- The minutes are the file's: a replay's clock is the records' time.
local bgp = require("bgp")

local total = {}   -- peer -> best-path changes
local minute = 0   -- changes since the last report

local function peer_name(peer)
  return string.format("%s AS%d", peer.address, peer.asn)
end

function on_load()
  bgp.every(60, function()
    bgp.log("info", string.format("%s: %d best-path changes in the last minute",
      os.date("!%H:%M:%S", math.floor(bgp.now())), minute))
    minute = 0
  end)
end

function on_best_path(ev)
  local name = peer_name(ev.peer)
  total[name] = (total[name] or 0) + 1
  minute = minute + 1
end

function on_unload()
  local list = {}
  for name, n in pairs(total) do
    list[#list + 1] = { name = name, n = n }
  end
  table.sort(list, function(a, b) return a.n > b.n or (a.n == b.n and a.name < b.name) end)
  for _, e in ipairs(list) do
    bgp.log("info", string.format("%7d best-path changes from %s", e.n, e.name))
  end
end
