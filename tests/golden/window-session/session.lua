-- Session windows with a 5 s inactivity gap and 2 s of grace, summing
-- values: an out-of-order record bridges two sessions, which merge (the
-- old ones are deleted with null values); a record that would extend a
-- closed session goes to the dead-letter topic.
local job = runnel.job("sessions")
job:stream("events", { value = "json" })
   :group_by_key()
   :window{ session = "5s", grace = "2s", late = "dlq" }
   :aggregate(function() return 0 end,
              function(_, v, agg) return agg + v end,
              function(_, a, b) return a + b end,
              "sessions")
   :to_stream()
   :to("sums")
return job
