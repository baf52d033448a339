local job = runnel.job("twice")
local s = job:stream("in")
s:group_by_key():count("c")
s:group_by_key():count("c")
return job
