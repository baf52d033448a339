-- The latest value per key at most once per 5 s of stream time (counted
-- from the key's first buffered update), and at most 2 keys buffered: a
-- third key makes the oldest one go out early.
local job = runnel.job("limit")
job:stream("temps", { value = "json" })
   :group_by_key()
   :reduce(function(_, b) return b end, "latest")
   :suppress{ ["until"] = "time_limit", time = "5s", max_records = 2 }
   :to_stream()
   :to("limited")
return job
