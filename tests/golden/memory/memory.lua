-- The memory limit (lua.memory.limit.bytes, 256 MiB by default, per Lua
-- state): a memory bomb fails only its record, which goes to the
-- dead-letter topic with "not enough memory" and the limit, whether it
-- grows a table step by step or asks for one huge string; pcall can catch
-- it; the records after it are processed, which needs the bomb's garbage
-- collected.
local job = runnel.job("memory")
job:stream("in")
   :map_values(function(v)
      if v == "table" then
         local t = {}
         for i = 1, 1e9 do t[i] = string.rep("x", 4096) .. i end
      elseif v == "string" then
         return string.rep("x", 1 << 30)
      elseif v == "caught" then
         local ok, err = pcall(string.rep, "x", 1 << 30)
         return "caught: " .. tostring(ok) .. ", " .. err
      end
      return v .. " " .. #string.rep("z", 1 << 20)
   end)
   :to("out")
return job
