-- A grace period just below int64 milliseconds would overflow stream
-- time - grace; it is refused as too large, not as "at least 0".
local job = runnel.job("grace")
local grouped = job:stream("clicks"):group_by_key()
grouped:window{ tumbling = "1m", grace = "106751991167300d" }:count("c")
return job
