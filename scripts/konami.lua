-- konami.lua: by default a peer gets only the default route. A peer that
-- sends the Konami code as communities on 10.0.0.0/8 (up up down down left
-- right left right B A, withdrawing in between where a direction repeats)
-- and then resets its session gets the full table from then on.
local bgp = require("bgp")

local WATCHED = "10.0.0.0/8"
local CODE = { "65000:38", "65000:38", "65000:40", "65000:40", "65000:37",
               "65000:39", "65000:37", "65000:39", "65000:66", "65000:65" }

-- peer address -> communities seen on WATCHED, oldest first. It lives in
-- bgp.state, so saving this file mid-sequence does not lose the sequence.
bgp.state.history = bgp.state.history or {}
local history = bgp.state.history

function on_load()
  -- Peers no one has unlocked get the default route only, from the moment
  -- their session comes up (peers added later too).
  bgp.set_default_export_policy("default-only")
end

function on_best_path(ev)
  if ev.prefix ~= WATCHED or ev.withdrawal then return end
  local h = history[ev.peer.address] or {}
  for _, c in ipairs(ev.communities) do
    h[#h + 1] = c
    if #h > #CODE then table.remove(h, 1) end -- keep the last ten
  end
  history[ev.peer.address] = h
end

local function entered(h)
  if #h < #CODE then return false end
  for i = 1, #CODE do
    if h[#h - #CODE + i] ~= CODE[i] then return false end
  end
  return true
end

function on_peer_state(ev)
  local peer = ev.peer.address
  if ev.state == "established" then
    history[peer] = {} -- a new session starts a new attempt
  elseif ev.old_state == "established" then
    local policy = entered(history[peer] or {}) and "full" or "default-only"
    bgp.log("info", "konami:", peer, "gets", policy)
    bgp.set_export_policy(peer, policy)
  end
end
