-- Tables: a table source with tombstones, table filter/map_values/to_stream,
-- and a table group_by with count, whose subtractor moves a row out of its
-- old group.
local job = runnel.job("tables")
local users = job:table("users", { value = "json", store = "users-store" })
users:filter(function(_, u) return u.active end)
     :map_values(function(u) return u.name end)
     :to_stream()
     :to("active-user-names")
users:group_by(function(_, u) return u.city, u end)
     :count("users-per-city")
     :to_stream()
     :to("city-counts")
return job
