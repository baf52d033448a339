-- Hopping windows of 10 s every 5 s, no grace: a record belongs to two
-- windows; when only the older one has closed, the newer one still takes
-- it; when both have, it goes to the dead-letter topic.
local job = runnel.job("hopping")
job:stream("clicks")
   :group_by_key()
   :window{ hopping = "10s", advance = "5s", late = "dlq" }
   :count("hop")
   :to_stream()
   :to("counts")
return job
