-- Clicks per page per minute: reads JSON click events from "clicks" (the
-- file source puts them there, with each click's "ts" as its event time),
-- counts them per page in tumbling one-minute windows that accept clicks up
-- to 30 seconds late, and writes one row per (page, minute) to
-- "clicks-per-minute", updated as counts grow.
local job = runnel.job("clicks-per-minute")
job:stream("clicks", { value = "json" })
   :filter(function(_, click) return type(click.page) == "string" end)
   :group_by(function(_, click) return click.page end)
   :window{ tumbling = "1m", grace = "30s" }
   :count("clicks-per-page-minute")
   :to_stream()
   :map(function(w, clicks)
     local row = { page = w.key, window_start = w.start, window_end = w["end"], clicks = clicks }
     return { page = w.key, window_start = w.start }, row
   end)
   :to("clicks-per-minute", { key = "json", value = "json" })
return job
