-- A duration whose milliseconds do not fit window arithmetic is refused
-- when the job is built (not wrapped around into a negative number).
local job = runnel.job("big")
local grouped = job:stream("clicks"):group_by_key()
grouped:window{ tumbling = "100000000000000d" }:count("c")
return job
