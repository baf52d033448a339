-- Stream-stream left join, within 10 ms, grace 5 ms: a left record
-- without a partner gives (l, nil) only once stream time passes its
-- timestamp + within + grace (no early "spurious" result, as Kafka Streams
-- 3.x), or at once when its window already lies before stream time; a
-- record older than the stores' retention that joins nothing and gives
-- nothing goes to the dead-letter topic (late = "dlq"); a null key gives
-- (l, nil) at once on the left side and is dropped on the right.
local job = runnel.job("pairs")
local left = job:stream("left")
local right = job:stream("right")
left:left_join(right, function(l, r) return l .. "+" .. (r or "-") end,
               { within = "10ms", grace = 5, late = "dlq" })
    :to("joined")
return job
