-- Sliding windows with records more than the size apart: a new record's
-- left window starts from the initializer when the previous record is
-- outside it, after early records (b, before 10 s) as after later ones (a).
local job = runnel.job("gap")
job:stream("c")
   :group_by_key()
   :window{ sliding = "10s" }
   :count("s")
   :to_stream()
   :to("out")
return job
