local bgp = require("bgp")
function on_bestpath(ev) bgp.log("info", ev.prefix) end
function on_load() bgp.anounce{prefix="10.0.0.0/8"} end
