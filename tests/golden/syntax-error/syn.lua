local job = runnel.job("syn")
job:stream("in"):to("out"
return job
