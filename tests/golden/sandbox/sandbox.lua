-- The sandbox seen from a job: each input value names something a job may
-- not do (luavm.h); the record fails with the sandbox's message and goes
-- to the dead-letter topic, and the records after it are processed.
local job = runnel.job("sandbox")
local tries = {
  ["os.execute"] = function() return os.execute("echo pwned") end,
  ["os.getenv"] = function() return os.getenv("HOME") end,
  ["os.remove"] = function() return os.remove("/tmp/x") end,
  ["io.open"] = function() return io.open("/etc/passwd") end,
  ["io.write"] = function() return io.write("x") end,
  ["loadfile"] = function() return loadfile("/etc/passwd") end,
  ["dofile"] = function() return dofile("/etc/passwd") end,
  ["debug.traceback"] = function() return debug.traceback() end,
  ["debug.getregistry"] = function() return debug.getregistry() end,
  ["require os"] = function() return require("os").execute("echo pwned") end,
  ["require io"] = function() return require("io").open("/etc/passwd") end,
  ["require file"] = function() return require("mymodule") end,
  ["package.loadlib"] = function() return package.loadlib("libc.so.6", "system") end,
  ["binary chunk"] = function() return assert(load(string.dump(function() end))) end,
  ["collectgarbage stop"] = function() return collectgarbage("stop") end,
  -- What stays: text chunks, pcall, the safe parts of os and string.
  ["load text"] = function() return load("return 6 * 7")() end,
  ["pcall"] = function()
    local ok, err = pcall(os.execute, "echo pwned")
    return tostring(ok) .. ": " .. err
  end,
  ["os.time"] = function() return math.type(os.time()) end,
  ["os.clock"] = function() return type(os.clock()) end,
}
job:stream("in")
   :map_values(function(v) return tries[v]() end)
   :to("out")
return job
