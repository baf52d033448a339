-- Tests of examples/wordcount written in Lua with runnel.test_driver:
-- runnel test --script tests/lua/test_wordcount.lua
local job = runnel.load_job("../../examples/wordcount/wordcount.lua")
local d = runnel.test_driver(job)

d:pipe("lines", "l1", "The quick fox", 1000)
d:pipe("lines", nil, "the end", 2000, { source = "test" })
local out = d:read("word-counts")
local got = {}
for i, r in ipairs(out) do got[i] = r.key .. "=" .. r.value .. "@" .. r.timestamp end
assert(table.concat(got, " ") == "the=1@1000 quick=1@1000 fox=1@1000 the=2@2000 end=1@2000",
       table.concat(got, " "))
assert(out[4].headers.source == "test", "headers are forwarded")
assert(#d:read("word-counts") == 0, "read() forgets what it returned")

-- The wall clock is the default timestamp.
d:advance_wall_clock(5000)
d:pipe("lines", nil, "fox")
out = d:read("word-counts")
assert(#out == 1 and out[1].key == "fox" and out[1].value == "2" and out[1].timestamp == 5000)

-- A record that fails goes to the dead-letter topic.
local bad = runnel.test_driver((function()
  local j = runnel.job("bad")
  j:stream("in", { value = "json" }):map_values(function(v) return v.n * 2 end):to("out")
  return j
end)())
bad:pipe("in", "k", { n = 21 })
bad:pipe("in", "k", { m = 1 })
local ok = bad:read("out")
assert(#ok == 1 and ok[1].value == "42")
local dlq = bad:read("bad-dlq")
assert(#dlq == 1 and dlq[1].value == '{"m":1}')
assert(dlq[1].headers["__runnel.errors.message"]:find("arithmetic on a nil value"))

-- Misuse is reported.
local okp, msg = pcall(d.pipe, d, "nope", nil, "x")
assert(not okp and msg:find("does not read the topic nope"), msg)
