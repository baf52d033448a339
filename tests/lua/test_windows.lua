-- Windows, suppression and wall-clock punctuation through the Lua test
-- driver: runnel test --script tests/lua/test_windows.lua
local job = runnel.load_job("../golden/suppress-window-close/final.lua")
local d = runnel.test_driver(job)
d:pipe("clicks", "a", "x", 1000)
d:pipe("clicks", "a", "x", 9000)
assert(#d:read("final") == 0, "nothing before the window closes")
d:pipe("clicks", "b", "x", 11999)
assert(#d:read("final") == 0, "stream time 11999 < end 10000 + grace 2000")
d:pipe("clicks", "b", "x", 12000)
local out = d:read("final")
assert(#out == 1, "one final result, got " .. #out)
assert(out[1].key == '{"key":"a","start":0,"end":10000}' and out[1].value == "2" and
       out[1].timestamp == 9000, out[1].key .. " " .. tostring(out[1].value) .. " " .. out[1].timestamp)

-- Wall-clock punctuation runs on advance_wall_clock, counted from the
-- task's first record.
local ticks = runnel.test_driver((function()
  local j = runnel.job("wall")
  j:stream("in"):group_by_key():count("n")
  j:punctuate("10s", function(ts, p) p:emit("ticks", "n", p:get("n", "k")) end,
              { type = "wall_clock", stores = { "n" } })
  return j
end)())
ticks:pipe("in", "k", "v", 500)
ticks:advance_wall_clock(9999)
assert(#ticks:read("ticks") == 0, "not yet due")
ticks:pipe("in", "k", "v", 600)
ticks:advance_wall_clock(1)
out = ticks:read("ticks")
assert(#out == 1 and out[1].value == "2" and out[1].timestamp == 10000,
       "one tick with the count at wall clock 10000")
ticks:advance_wall_clock(25000) -- 35000: the ticks due at 20000 and 30000 fire once
out = ticks:read("ticks")
assert(#out == 1 and out[1].timestamp == 35000, "missed intervals fire once")
