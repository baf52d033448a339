-- Table-table joins: inner (materialised in the store "user-scores"),
-- left and outer, updated from either side; a deleted row ends a joined
-- row with a tombstone (a null value downstream).
local job = runnel.job("scores")
local users = job:table("users", { store = "users" })
local scores = job:table("scores", { store = "scores" })
local function pair(u, s) return (u or "-") .. "+" .. (s or "-") end
users:join(scores, pair, { store = "user-scores" }):to_stream():to("inner")
users:left_join(scores, pair):to_stream():to("left")
users:outer_join(scores, pair):to_stream():to("outer")
return job
