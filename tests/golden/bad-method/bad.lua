local job = runnel.job("bad")
job:stream("in")
   :flter(function() return true end)
return job
