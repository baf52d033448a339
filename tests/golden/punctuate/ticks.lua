-- Punctuation: every 10 s of stream time the total of the counts (fired
-- by the first record, then as records advance stream time past each
-- multiple of 10 s; an out-of-order record fires nothing), and every
-- minute of wall clock a heartbeat (advance_wall_clock in the test).
local job = runnel.job("ticks")
job:stream("clicks"):group_by_key():count("clicks")
job:punctuate("10s", function(ts, p)
  local n = 0
  for _, kv in ipairs(p:range("clicks")) do n = n + kv[2] end
  p:emit("totals", "stream", n)
end, { type = "stream_time", stores = { "clicks" } })
job:punctuate("1m", function(ts, p) p:emit("heartbeats", "wall", ts) end,
              { type = "wall_clock", stores = { "clicks" } })
return job
