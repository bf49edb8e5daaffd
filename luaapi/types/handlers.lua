---@meta
-- The handlers edbgpd calls in a script, and what the sandbox leaves of
-- Lua's os library (io, debug, dofile and loadfile only when granted).

---Called for every best-path change the script is subscribed to.
---@param ev bgp.BestPathEvent
function on_best_path(ev) end

---Called for every change of a BGP session's state.
---@param ev bgp.PeerStateEvent
function on_peer_state(ev) end

---Called once the chunk has run, before any event.
function on_load() end

---Called before the script is replaced or stopped.
function on_unload() end

---@class sandbox.os
---@field time fun(t: table?): integer
---@field date fun(format: string?, t: integer?): string|table
---@field clock fun(): number
os = {}
