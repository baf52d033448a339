local job = runnel.job("bad")
local grouped = job:stream("clicks"):group_by_key()
grouped:window{ tumbling = "10 minutes" }:count("c")
return job
