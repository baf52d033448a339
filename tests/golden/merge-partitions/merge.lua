-- Merged topics need not be co-partitioned (Kafka Streams checks
-- co-partitioning for joins only): a (2 partitions) merges with b (3), a
-- multi-topic source reads c (1) and d (3); every record comes through,
-- whatever its partition. Only the join checks its topics (e and the
-- table t, both 3 partitions).
local job = runnel.job("merge")
local t = job:table("t")
job:stream("a"):merge(job:stream("b"))
   :map_values(function(v) return v .. "!" end)
   :to("merged")
job:stream({ "c", "d" }):to("multi")
job:stream("e")
   :join(t, function(v, tv) return v .. "+" .. tv end)
   :to("joined")
return job
