-- Stream-stream inner join, within 10 ms, grace 5 ms: a record joins every
-- record of the other side with its key at most 10 ms apart, whenever it
-- arrives, as long as the other side's store still holds it (retention
-- 2 * within + grace = 25 ms before stream time); there is no late drop
-- (Kafka Streams' KStreamKStreamJoin). A joined record has the larger of
-- the two timestamps. Null keys and values join nothing.
local job = runnel.job("pairs")
local left = job:stream("left")
local right = job:stream("right")
left:join(right, function(l, r) return l .. "+" .. r end, { within = 10, grace = "5ms" })
    :to("joined")
return job
