-- Clicks per page: reads JSON click events from "clicks", counts them by
-- page, and writes every new count to "page-counts".
local job = runnel.job("clicks")
job:stream("clicks", { value = "json" })
   :filter(function(_, click) return click.page ~= nil end)
   :group_by(function(_, click) return click.page end)
   :count("clicks-per-page")
   :to_stream()
   :to("page-counts")
return job
