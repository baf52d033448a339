-- A join after a key change: the clicks, keyed by click id, are re-keyed
-- by user; the join repartitions them first, through the internal topic
-- "clicks-by-user-repartition" (not printed), keyed with the table's key
-- serde, so each click meets its user's row in one task.
local job = runnel.job("clicks")
local users = job:table("users", { store = "users" })
job:stream("clicks", { value = "json" })
   :select_key(function(_, c) return c.user end)
   :join(users, function(c, name) return name .. " saw " .. c.page end, { name = "by-user" })
   :to("user-clicks")
return job
