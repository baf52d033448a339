-- The instruction budget (lua.instruction.budget, 10M by default, per
-- record): a runaway loop fails only its record, which goes to the
-- dead-letter topic; catching the budget error with pcall does not let the
-- loop go on (luavm.c, invariant 3); the next records are processed, and
-- the state of an aggregation is kept.
local job = runnel.job("budget")
job:stream("in")
   :map_values(function(v)
      if v == "loop" then
         while true do end
      elseif v == "caught" then
         local ok = pcall(function() while true do end end)
         return "escaped the budget: " .. tostring(ok)
      elseif v == "recursion" then
         local function f(n) return f(n + 1) end -- a tail call: no stack overflow
         return f(0)
      end
      return v
   end)
   :group_by_key()
   :count("counts")
   :to_stream()
   :to("counts")
return job
