local B = require("bgp")
B.subscribe{prefix = {"10.0.0.0/8"}}
