local job = runnel.job("strict", { errors_tolerance = "none" })
job:stream("in", { value = "json" })
   :map_values(function(v) return v.n * 2 end)
   :to("out")
return job
