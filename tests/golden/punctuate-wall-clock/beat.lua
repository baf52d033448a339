-- Wall-clock punctuation starts with the task, not with its first record:
-- as Kafka's TopologyTestDriver creates every task up front, a heartbeat
-- fires at 60000 and 120000 before any record arrives.
local job = runnel.job("beat")
job:stream("clicks"):group_by_key():count("clicks"):to_stream():to("counts")
job:punctuate("1m", function(ts, p) p:emit("heartbeats", "wall", ts) end,
              { type = "wall_clock", stores = { "clicks" } })
return job
