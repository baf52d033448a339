-- Stream-global table joins: every task holds the whole "products" table
-- (every partition of it); the lookup key comes from the order's value,
-- so the orders need no co-partitioning with the products.
local job = runnel.job("enrich")
local products = job:global_table("products", { value = "json", store = "products" })
local orders = job:stream("orders", { value = "json" })
local function product_of(_, o) return o.product end
orders:join(products, product_of, function(o, p)
  return { product = o.product, total = o.qty * p.price }
end):to("priced")
orders:left_join(products, product_of, function(o, p)
  return { product = o.product, total = p and o.qty * p.price or -1 }
end):to("priced-left")
return job
