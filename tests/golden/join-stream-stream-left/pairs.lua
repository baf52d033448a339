-- Stream-stream left join, within 10 ms, grace 5 ms: a left record
-- without a partner gives (l, nil) only once stream time passes its
-- timestamp + within + grace (no early "spurious" result, as Kafka Streams
-- 3.x); a late record goes to the dead-letter topic (late = "dlq").
local job = runnel.job("pairs")
local left = job:stream("left")
local right = job:stream("right")
left:left_join(right, function(l, r) return l .. "+" .. (r or "-") end,
               { within = "10ms", grace = 5, late = "dlq" })
    :to("joined")
return job
