-- Tumbling windows of 10 s with 5 s of grace: an out-of-order record
-- inside the grace period updates its window; one after it goes to the
-- dead-letter topic with reason "late" (docs/windows-and-joins.md).
local job = runnel.job("tumbling")
job:stream("clicks")
   :group_by_key()
   :window{ tumbling = "10s", grace = "5s", late = "dlq" }
   :count("clicks-per-10s")
   :to_stream()
   :to("counts")
return job
