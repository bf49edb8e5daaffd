-- Logs every best path, one line each: what the offline and live replays
-- must agree on. The peer is named by its router id and AS: the live
-- feeder's address is a loopback one.
local bgp = require("bgp")

function on_best_path(ev)
  local communities = ""
  if not ev.withdrawal then
    communities = table.concat(ev.communities, ",")
  end
  bgp.log("info", string.format("SEQ %s %s AS%d %s [%s] [%s]", ev.prefix, ev.peer.router_id, ev.peer.asn,
    tostring(ev.withdrawal), ev.withdrawal and "" or ev.as_path_string, communities))
end
