---@meta bgp
-- LuaLS definitions of edbgpd's `bgp` module and its two events, for
-- editors (`edbgpd init` puts this file in a scripts folder's .luals/).
-- The module's functions and the events' fields are checked against
-- edbgpd's own by luaapi's TestStubs: adding one without its stub fails.

---@alias bgp.Policy "full"|"default-only"|"none"|string a policy name, or a GoBGP policy of the config
---@alias bgp.Family "ipv4-unicast"|"ipv6-unicast"|string

---@class bgp.Peer
---@field address string the neighbour's address; "" for routes edbgpd originates
---@field asn integer
---@field router_id string

---@class bgp.BestPathEvent
---@field type "best_path"
---@field seq integer per daemon, increasing over both event kinds
---@field prefix string "10.0.0.0/8"
---@field family bgp.Family
---@field withdrawal boolean true when the prefix has no best path any more
---@field peer bgp.Peer where the path came from
---@field timestamp number when the path was received (Unix seconds)
---@field age number seconds since then, at delivery
---@field replay boolean? only for paths handed over by bgp.subscribe{replay = true}
---@field coalesced boolean? only when older states of this prefix were left out
---@field skipped integer? how many were left out
---@field previous bgp.BestPathEvent? the best path this one replaces, for subscribed prefixes
---@field nexthop string
---@field as_path integer[]
---@field as_path_string string "65002 64512"
---@field origin "igp"|"egp"|"incomplete"
---@field med integer? nil when the path has none
---@field local_pref integer? nil when the path carries none
---@field communities string[] "65000:38"
---@field large_communities string[] "65000:1:2"
---@field extended_communities string[] "rt:65000:100"

---@class bgp.PeerStateEvent
---@field type "peer_state"
---@field seq integer
---@field peer bgp.Peer
---@field state "idle"|"connect"|"active"|"opensent"|"openconfirm"|"established"
---@field old_state string? nil for the first state edbgpd sees of a peer
---@field reason string? why the session went down, when it leaves established
---@field timestamp number Unix seconds

---@class bgp.PeerInfo: bgp.Peer
---@field state string
---@field admin_down boolean
---@field export_policy string
---@field import_policy string
---@field description string
---@field received integer prefixes, all families
---@field accepted integer
---@field advertised integer
---@field uptime number seconds in Established
---@field flaps integer

---@class bgp.Route
---@field prefix string
---@field nexthop string?
---@field origin ("igp"|"egp"|"incomplete")?
---@field as_path integer[]?
---@field prepend integer? copies of the daemon's AS put in front of as_path
---@field communities string[]?
---@field large_communities string[]?
---@field med integer?
---@field local_pref integer?

---@class bgp.Walk
---@field family bgp.Family?
---@field chunk integer? paths per turn (default 1000)
---@field fn fun(path: bgp.BestPathEvent)
---@field done fun(count: integer)?

---@class bgp.Subscription
---@field families bgp.Family[]?
---@field prefixes string[]?
---@field covered_by string[]?
---@field peers string[]?
---@field communities string[]?
---@field peer_state boolean? (default true)
---@field replay boolean? hand over the current best paths first

---@class bgp.Result
---@field ok boolean
---@field status integer HTTP status or exit code
---@field output string truncated to 4 KiB
---@field error string?

---@class bgp.Prefix
---@field prefix string
---@field address string
---@field length integer
---@field family "ipv4"|"ipv6"

---@class bgp
---@field state table survives reloads of the script (functions are dropped)
local bgp = {}

---Log at a level; values joined by spaces, with the script, version and line.
---@param level "debug"|"info"|"warn"|"error"
---@param ... any
function bgp.log(level, ...) end

---Originate a route from the daemon's RIB; announcing a prefix again replaces it.
---@param route bgp.Route
---@return true|nil ok
---@return string? reason
function bgp.announce(route) end

---Withdraw what this script announced.
---@param prefix string
---@return true|nil ok
---@return string? reason
function bgp.withdraw(prefix) end

---The best path of exactly that prefix.
---@param prefix string
---@return bgp.BestPathEvent?
function bgp.best_path(prefix) end

---The best path of the longest prefix covering the address.
---@param address string
---@return bgp.BestPathEvent?
function bgp.lookup(address) end

---The path that peer sent for the prefix (Adj-RIB-In after import policy).
---@param peer string
---@param prefix string
---@return bgp.BestPathEvent?
function bgp.received(peer, prefix) end

---Visit every best path of a family in chunks.
---@param walk bgp.Walk
---@return true|nil ok
---@return string? reason
function bgp.walk(walk) end

---@return bgp.PeerInfo[]
function bgp.peers() end

---@param address string
---@return bgp.PeerInfo|nil peer
---@return string? reason
function bgp.peer(address) end

---@param address string
---@param how ("hard"|"soft"|"soft-in"|"soft-out")?
---@return true|nil ok
---@return string? reason
function bgp.reset_peer(address, how) end

---Administrative down.
---@param address string
---@return true|nil ok
---@return string? reason
function bgp.disable_peer(address) end

---Administrative up.
---@param address string
---@return true|nil ok
---@return string? reason
function bgp.enable_peer(address) end

---What edbgpd sends to one peer.
---@param peer string
---@param policy bgp.Policy
---@return true|nil ok
---@return string? reason
function bgp.set_export_policy(peer, policy) end

---What every peer no script has set gets, peers added later included.
---@param policy bgp.Policy
---@return true|nil ok
---@return string? reason
function bgp.set_default_export_policy(policy) end

---A dry run of set_export_policy for a peer whose session is up.
---@param peer string
---@param policy bgp.Policy
---@return {add: string[], withdraw: string[]}|nil change
---@return string? reason
function bgp.preview_export_policy(peer, policy) end

---What edbgpd accepts from one peer.
---@param peer string
---@param policy bgp.Policy
---@return true|nil ok
---@return string? reason
function bgp.set_import_policy(peer, policy) end

---@param kind "prefix"|"neighbor"|"community"|"ext-community"|"large-community"|"as-path"
---@param name string
---@param entries string[]
---@return true|nil ok
---@return string? reason
function bgp.defined_set_add(kind, name, entries) end

---@param kind "prefix"|"neighbor"|"community"|"ext-community"|"large-community"|"as-path"
---@param name string
---@param entries string[]
---@return true|nil ok
---@return string? reason
function bgp.defined_set_remove(kind, name, entries) end

---Also keep bgp.state across daemon restarts (needs [edbgpd] data).
---@param on boolean?
---@return true|nil ok
---@return string? reason
function bgp.persist_state(on) end

---fn() once, on the script's goroutine, in order with events.
---@param seconds number
---@param fn fun()
---@return integer id
function bgp.after(seconds, fn) end

---fn() every seconds until cancelled (at least 10 ms apart).
---@param seconds number
---@param fn fun()
---@return integer id
function bgp.every(seconds, fn) end

---@param id integer
---@return boolean stopped
function bgp.cancel(id) end

---Unix time in seconds, fractions included (the fake clock in edbgpd test).
---@return number
function bgp.now() end

---Which events this script gets; only while the script loads.
---@param subscription bgp.Subscription
---@return true|nil ok
---@return string? reason
function bgp.subscribe(subscription) end

---POST value as JSON (the URL must be on [edbgpd] http-allow).
---@param url string
---@param value any
---@param callback fun(result: bgp.Result)?
---@return true|nil ok
---@return string? reason
function bgp.http_post(url, value, callback) end

---Run a program directly, no shell (it must be on [edbgpd] exec-allow).
---@param command string
---@param args string[]?
---@param callback fun(result: bgp.Result)?
---@return true|nil ok
---@return string? reason
function bgp.exec(command, args, callback) end

---@param value any
---@return string|nil json
---@return string? reason
function bgp.json_encode(value) end

---@param json string
---@return any|nil value
---@return string? reason
function bgp.json_decode(json) end

---@param s string a prefix or an address (a host prefix)
---@return bgp.Prefix|nil prefix
---@return string? reason
function bgp.parse_prefix(s) end

---Whether inner (prefix or address) lies within outer.
---@param outer string
---@param inner string
---@return boolean
function bgp.prefix_contains(outer, inner) end

---@param a string
---@param b string
---@return boolean
function bgp.prefix_overlap(a, b) end

---"65000:38", or no-export, no-advertise, no-export-subconfed, blackhole.
---@param s string
---@return integer|nil asn
---@return integer|string value or the reason
function bgp.parse_community(s) end

---@param asn integer
---@param value integer
---@return string "asn:value"
function bgp.format_community(asn, value) end

return bgp
