-- Stream-stream outer join, within 10 ms, no grace: a record of either
-- side without a partner gives its half once stream time passes its
-- timestamp + within; what waits at the end of the input waits on.
local job = runnel.job("pairs")
local left = job:stream("left")
local right = job:stream("right")
left:outer_join(right, function(l, r) return (l or "-") .. "+" .. (r or "-") end, { within = "10ms" })
    :to("joined")
return job
