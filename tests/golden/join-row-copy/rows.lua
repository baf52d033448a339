-- Joiners may change the rows they are given: every lookup gets the row
-- as stored (Kafka Streams deserialises it again for each lookup), so
-- what a joiner or a map_values did to the row of one record never
-- reaches the next record, whether the row comes from a table, through a
-- map_values, or from a global table; and an update of the row is seen
-- by the next record.
local job = runnel.job("rows")
local users = job:table("users", { value = "json", store = "users" })
local orders = job:stream("orders", { value = "json" })
orders:join(users, function(o, u)
  u.visits = (u.visits or 0) + 1
  u.tags[#u.tags + 1] = o.item
  return { item = o.item, visits = u.visits, tags = u.tags, empty = u.empty }
end):to("joined")
local shouting = users:map_values(function(u)
  u.name = string.upper(u.name)
  u.tags[#u.tags + 1] = "m"
  return u
end)
orders:join(shouting, function(o, u)
  u.name = u.name .. "!"
  return { item = o.item, name = u.name, ntags = #u.tags }
end):to("joined-mapped")
local products = job:global_table("products", { value = "json", store = "products" })
orders:join(products, function(_, o) return o.product end, function(o, p)
  p.stock = p.stock - 1
  return { item = o.item, stock = p.stock }
end):to("stock")
return job
