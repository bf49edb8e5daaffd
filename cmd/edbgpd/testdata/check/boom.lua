local bgp = require("bgp")
function on_load() error("boom") end
