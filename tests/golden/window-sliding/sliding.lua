-- Sliding windows (at most 10 s between records, 5 s of grace): every
-- record has a window ending at it and, when a later record is within
-- 10 s, one starting 1 ms after it; out-of-order records update every
-- window that contains them; a record too late for any window is dropped.
local job = runnel.job("sliding")
job:stream("clicks")
   :group_by_key()
   :window{ sliding = "10s", grace = "5s" }
   :count("slide")
   :to_stream()
   :to("counts")
return job
