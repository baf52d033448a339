-- reduce and aggregate, with and without a key change, and the dead-letter
-- topic for a record that makes an operator fail.
local job = runnel.job("totals")
local sales = job:stream("sales", { value = "json" })
sales:map_values(function(s) return s.amount end)
     :group_by_key()
     :reduce(function(a, b) return a + b end, "sum-by-shop")
     :to_stream()
     :to("sums")
sales:group_by(function(_, s) return s.product end)
     :aggregate(function() return { n = 0, amount = 0 } end,
                function(_, s, agg) return { n = agg.n + 1, amount = agg.amount + s.amount } end,
                "by-product")
     :to_stream()
     :to("by-product", { value = "json" })
return job
