-- A stream-table join of topics with different partition counts is
-- refused before any record is processed, naming both topics.
local job = runnel.job("orders")
local customers = job:table("customers", { value = "json" })
job:stream("orders", { value = "json" })
   :join(customers, function(o, c) return { item = o.item, name = c.name } end)
   :to("orders-enriched")
return job
