-- Stream-table joins: each order looks its customer up in the table as of
-- its processing; table updates alone emit nothing; a null value is
-- dropped; a null key is dropped by join and joined with nil by left_join
-- (Kafka Streams 3.7+, KIP-962); a joiner returning nil drops the result.
local job = runnel.job("orders")
local customers = job:table("customers", { value = "json", store = "customers" })
local orders = job:stream("orders", { value = "json" })
orders:join(customers, function(o, c)
  if o.item == "secret" then return nil end
  return { item = o.item, name = c.name }
end):to("orders-enriched")
orders:left_join(customers, function(o, c)
  return { item = o.item, name = c and c.name or "unknown" }
end):to("orders-left")
return job
