-- A test script whose assertion fails: runnel test --script must exit 1.
local d = runnel.test_driver(runnel.load_job("../../examples/wordcount/wordcount.lua"))
d:pipe("lines", nil, "one")
local out = d:read("word-counts")
assert(out[1].value == "2", "expected a count of 2, got " .. out[1].value)
