-- runnel.lua: the job DSL, loaded into every job's Lua state before the job.
--
-- A job script builds a topology with Kafka Streams' vocabulary and returns
-- it. Building only records nodes; runnel._compile (called by the runtime
-- after the script returns) checks the graph, cuts it into sub-topologies
-- at repartition topics, names internal topics and stores, and compiles
-- each sub-topology into plain Lua closures, one per node, that call each
-- other directly: no per-record tables, no method dispatch.
--
-- The C side (runtime/topo_lua.c) provides, in the `runnel` table:
--   runnel._emit(topic, key_bytes, value_bytes)   buffer an output record
--   runnel._store_get(store_index, key_bytes) -> value_bytes or nil
--   runnel._store_get_row(store_index, key_bytes) -> the decoded value or nil
--     (a new value each time, rebuilt without parsing while the row's
--     bytes stay the same: runtime/topo_rows.c; the lookups of joins)
--   runnel._store_put(store_index, key_bytes, value_bytes_or_nil)
--     (an integer value is stored as its decimal digits)
--   runnel.record.timestamp(), .topic(), .partition(), .offset(),
--   .headers(), .set_header(k, v), .set_timestamp(ms)
--   runnel.json.encode / runnel.json.decode / runnel.null
--   runnel._wstore_get(store_index, key_bytes, start, end) -> value_bytes or nil
--   runnel._wstore_put(store_index, key_bytes, start, end, value_bytes_or_nil)
--   runnel._wstore_fetch(store_index, key_bytes, start_from, start_to)
--     -> { start1, end1, value1, start2, ... } (window stores; see store.h)
--   runnel._wcount_add(store_index, key_bytes, start, end, ts) -> new, old, window_ts
--   runnel._store_range(store_index, from_bytes, to_bytes, limit) -> { k1, v1, ... }
--   runnel._stream_time() -> the task's stream time (ms, -1 before any record)
--   runnel._window_time() -> record timestamp, stream time (one call)
--   runnel._late(message, to_dlq)  the record was dropped: its windows closed
--   runnel._set_event_time(ms)     the source's timestamp function's result
--
-- Names: a node is described as KIND-N (N counts nodes, for messages and
-- GET /jobs/{name} only). Store names are the user's; internal topics are
-- "<job>-<store>-repartition" and "<job>-<store>-changelog" (as Kafka
-- Streams names them from application.id and the store), so editing other
-- parts of a job never renames its state.

local runnel = runnel
local json = runnel.json
local json_decode = json.decode
local pcall = pcall
local emit = runnel._emit
local store_get = runnel._store_get
local store_put = runnel._store_put
local store_get_row = runnel._store_get_row
local type, error, ipairs, pairs, tostring, setmetatable, getmetatable, select =
  type, error, ipairs, pairs, tostring, setmetatable, getmetatable, select
local fmt = string.format
local tonumber, math_type = tonumber, math.type

local NAME_PATTERN = "^[A-Za-z0-9._-]+$"

---------------------------------------------------------------------------
-- Build errors: raised with the position of the job script's line that
-- called into the DSL.
---------------------------------------------------------------------------

-- The position is that of the first caller outside this file (tail calls
-- make error levels unreliable), found by runnel._where() in C.
local where = runnel._where
local function fail(msg)
  error(where() .. msg, 0)
end

local function check_fn(v, method, what)
  if type(v) ~= "function" then
    fail(fmt("%s: expected a function for %s, got %s", method, what, type(v)))
  end
end

local function check_name(v, method, what)
  if type(v) ~= "string" or not v:match(NAME_PATTERN) or #v > 200 then
    fail(fmt("%s: %s must be a name of 1 to 200 characters from [A-Za-z0-9._-], got %s",
             method, what, type(v) == "string" and fmt("%q", v) or type(v)))
  end
end

local function check_opts(v, method, allowed)
  if v == nil then return {} end
  if type(v) ~= "table" then
    fail(fmt("%s: expected an options table, got %s", method, type(v)))
  end
  for k in pairs(v) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      fail(fmt("%s: unknown option %q (allowed: %s)", method, tostring(k),
               table.concat(names, ", ")))
    end
  end
  return v
end

---------------------------------------------------------------------------
-- Durations (windows, joins, punctuation): integer milliseconds, or a
-- string "<integer><unit>" with unit ms, s, m, h or d ("500ms", "10s",
-- "5m", "1h", "1d"). Errors name the job script's line.
---------------------------------------------------------------------------

local DURATION_UNITS = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000 }
-- The largest duration: 2^53 ms (about 285,000 years). Window arithmetic
-- (timestamp + 2 * size + grace + 1 for sliding windows) stays far from
-- int64 overflow, and the value is exact in a double (JSON, metrics).
local DURATION_MAX = 1 << 53

local function duration_too_large(method, what, v)
  fail(fmt("%s: %s is too large: %s (at most %d ms, about 285,000 years)", method, what,
           type(v) == "string" and fmt("%q", v) or tostring(v), DURATION_MAX))
end

-- duration(v, method, what[, allow_zero]) -> milliseconds (an integer)
local function duration(v, method, what, allow_zero)
  local ms
  if math_type(v) == "integer" then
    if v > DURATION_MAX then duration_too_large(method, what, v) end
    ms = v
  elseif type(v) == "string" then
    local n, unit = v:match("^(%d+)(%a+)$")
    local mult = unit and DURATION_UNITS[unit]
    if not mult then
      fail(fmt("%s: %s must be milliseconds or a duration like \"500ms\", \"10s\", \"5m\", " ..
               "\"1h\", \"1d\", got %q", method, what, v))
    end
    -- Checked before multiplying: integer multiplication wraps around.
    local digits = n:gsub("^0+", "")
    if #digits > 16 or (math.tointeger(tonumber(digits)) or 0) > DURATION_MAX // mult then
      duration_too_large(method, what, v)
    end
    ms = (math.tointeger(tonumber(digits)) or 0) * mult
  else
    fail(fmt("%s: %s must be milliseconds (an integer) or a duration string like \"5m\", got %s",
             method, what, type(v) == "number" and tostring(v) or type(v)))
  end
  if ms < 0 or (ms == 0 and not allow_zero) then
    fail(fmt("%s: %s must be %s, got %s", method, what,
             allow_zero and "at least 0" or "more than 0", tostring(v)))
  end
  return ms
end
runnel._duration = duration

-- A windowed key: { key = K, start = ms, ["end"] = ms } with this
-- metatable, so that serdes write it as {"key":K,"start":ms,"end":ms}.
local Windowed = {}
runnel._Windowed = Windowed

local function windowed_json(w)
  return fmt('{"key":%s,"start":%d,"end":%d}', w.key == nil and "null" or json.encode(w.key),
             w.start, w["end"])
end

---------------------------------------------------------------------------
-- Serdes: bytes <-> Lua values. nil (a null key or value) passes through.
---------------------------------------------------------------------------

local function encode_default(v)
  -- Strings as they are; everything else as JSON (numbers, booleans,
  -- tables, windowed keys).
  if v == nil or type(v) == "string" then return v end
  if getmetatable(v) == Windowed then return windowed_json(v) end
  return json.encode(v)
end

local builtin_serdes = {
  string = {
    decode = function(b) return b end,
    encode = function(v)
      if v == nil or type(v) == "string" then return v end
      if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
      error(fmt("the string serde cannot encode a %s (use the json serde)", type(v)), 0)
    end,
  },
  bytes = {
    decode = function(b) return b end,
    encode = function(v)
      if v == nil or type(v) == "string" then return v end
      error(fmt("the bytes serde cannot encode a %s", type(v)), 0)
    end,
  },
  json = {
    decode = function(b)
      if b == nil then return nil end
      local ok, v = pcall(json_decode, b)
      if ok then return v end
      -- The decoder's message without the position of this line.
      error("json serde: " .. tostring(v):gsub("^[^:]*:%d+: ", ""), 0)
    end,
    encode = function(v)
      if v == nil then return nil end
      if getmetatable(v) == Windowed then return windowed_json(v) end
      return json.encode(v)
    end,
  },
  default = { decode = function(b) return b end, encode = encode_default },
}

local function resolve_serde(spec, method, what, default)
  if spec == nil or spec == false then return builtin_serdes[default], default end
  if type(spec) == "string" then
    local s = builtin_serdes[spec]
    if not s or spec == "default" then
      fail(fmt("%s: unknown %s serde %q (string, json, bytes, or {encode = fn, decode = fn})",
               method, what, spec))
    end
    return s, spec
  end
  if type(spec) == "table" and type(spec.encode) == "function" and type(spec.decode) == "function" then
    local enc, dec = spec.encode, spec.decode
    return {
      encode = function(v) if v == nil then return nil end return enc(v) end,
      decode = function(b) if b == nil then return nil end return dec(b) end,
    }, "custom"
  end
  fail(fmt("%s: the %s serde must be \"string\", \"json\", \"bytes\" or {encode = fn, decode = fn}",
           method, what))
end

-- Keys of stores and of repartition topics are written with the key serde
-- of the grouping (default "string"), as Kafka Streams does, so that a
-- repartitioned key lands in the partition its table topic would use.

---------------------------------------------------------------------------
-- The graph
---------------------------------------------------------------------------

local Job, Stream, Table, Grouped, GroupedTable, Splitter = {}, {}, {}, {}, {}, {}

-- hints[name]: what to say about a method this kind lacks but another has.
local function unknown_method(kind, methods, hints)
  return function(_, name)
    local m = methods[name]
    if m ~= nil then return m end
    local hint = hints and hints[name]
    fail(fmt("unknown method %q on a %s%s", tostring(name), kind, hint and " " .. hint or ""))
  end
end

Job.__index = unknown_method("job", Job)
local GROUP_FIRST = "(call group_by_key() or group_by() first)"
Stream.__index = unknown_method("stream", Stream, {
  window = GROUP_FIRST, count = GROUP_FIRST, reduce = GROUP_FIRST, aggregate = GROUP_FIRST,
})
Table.__index = unknown_method("table", Table)
Grouped.__index = unknown_method("grouped stream", Grouped)
GroupedTable.__index = unknown_method("grouped table", GroupedTable)
Splitter.__index = unknown_method("split", Splitter)

local function new_node(job, kind, parents, fields)
  job.counter = job.counter + 1
  local node = fields or {}
  node.kind = kind
  node.id = job.counter
  node.name = fmt("%s-%d", kind, job.counter)
  node.parents = parents
  node.children = {}
  for _, p in ipairs(parents) do p.children[#p.children + 1] = node end
  job.nodes[#job.nodes + 1] = node
  return node
end

-- windowed_key: the keys are a windowed table's { key, start, end }
-- (to_stream() of a windowed aggregate), which the string and bytes serdes
-- cannot write.
local function stream_of(job, node, key_changed, windowed_key)
  return setmetatable({ job = job, node = node, key_changed = key_changed,
                        windowed_key = windowed_key or false }, Stream)
end

local function table_of(job, node, store)
  return setmetatable({ job = job, node = node, store = store or false }, Table)
end

-- A store name must be a valid name used once per job. Aggregations call
-- this before building their nodes, so the name is the first thing checked.
local function check_new_store(job, name, method)
  check_name(name, method, "the store name")
  if job.stores_by_name[name] then
    fail(fmt("%s: the store name %q is used twice", method, name))
  end
end

local function add_store(job, name, method, fields)
  check_new_store(job, name, method)
  local st = fields or {}
  st.name = name
  st.index = #job.stores + 1
  st.changelog = fmt("%s-%s-changelog", job.name, name)
  job.stores[st.index] = st
  job.stores_by_name[name] = st
  return st
end

function runnel.job(name, opts)
  check_name(name, "runnel.job", "the job name")
  opts = check_opts(opts, "runnel.job", { errors_tolerance = true, dlq = true })
  local tol = opts.errors_tolerance or "all"
  if tol ~= "all" and tol ~= "none" then
    fail(fmt("runnel.job: errors_tolerance must be \"all\" or \"none\", got %q", tostring(tol)))
  end
  return setmetatable({
    name = name, errors_tolerance = tol,
    dlq = opts.dlq == nil and (name .. "-dlq") or opts.dlq,
    counter = 0, nodes = {}, stores = {}, stores_by_name = {}, sources = {},
  }, Job)
end

-- job:stream(topic or {topics}, {key = serde, value = serde, timestamp = fn})
function Job:stream(topics, opts)
  opts = check_opts(opts, "stream", { key = true, value = true, timestamp = true })
  if type(topics) == "string" then topics = { topics } end
  if type(topics) ~= "table" or #topics == 0 then
    fail("stream: expected a topic name or a list of topic names")
  end
  for _, t in ipairs(topics) do check_name(t, "stream", "a topic name") end
  if opts.timestamp ~= nil then check_fn(opts.timestamp, "stream", "timestamp") end
  local kser = resolve_serde(opts.key, "stream", "key", "string")
  local vser = resolve_serde(opts.value, "stream", "value", "string")
  local node = new_node(self, "SOURCE", {}, {
    topics = topics, kdec = kser.decode, vdec = vser.decode, timestamp = opts.timestamp,
  })
  for _, t in ipairs(topics) do
    if self.sources[t] then fail(fmt("stream: the topic %q is already a source of this job", t)) end
    self.sources[t] = node
  end
  return stream_of(self, node, false)
end

-- job:table(topic, {key = serde, value = serde, store = name})
function Job:table(topic, opts)
  opts = check_opts(opts, "table", { key = true, value = true, store = true, timestamp = true })
  check_name(topic, "table", "the topic name")
  if self.sources[topic] then fail(fmt("table: the topic %q is already a source of this job", topic)) end
  local kser = resolve_serde(opts.key, "table", "key", "string")
  local vser = resolve_serde(opts.value, "table", "value", "string")
  local st = add_store(self, opts.store or (topic .. "-table"), "table")
  local node = new_node(self, "TABLE-SOURCE", {}, {
    topics = { topic }, kdec = kser.decode, vdec = vser.decode, store = st, table = true,
    kenc = kser.encode,
    timestamp = opts.timestamp,
  })
  st.node = node
  self.sources[topic] = node
  return table_of(self, node, st)
end

---------------------------------------------------------------------------
-- Stateless stream operators
---------------------------------------------------------------------------

local function method_name(kind)
  return (kind:lower():gsub("^table%-", ""):gsub("-", "_"))
end

local function stateless(kind, changes_key)
  return function(self, fn)
    check_fn(fn, method_name(kind), "its argument")
    local node = new_node(self.job, kind, { self.node }, { fn = fn })
    return stream_of(self.job, node, self.key_changed or changes_key,
                     not changes_key and self.windowed_key)
  end
end

Stream.filter = stateless("FILTER", false)
Stream.filter_not = stateless("FILTER-NOT", false)
Stream.map = stateless("MAP", true)
Stream.map_values = stateless("MAP-VALUES", false)
Stream.flat_map = stateless("FLAT-MAP", true)
Stream.flat_map_values = stateless("FLAT-MAP-VALUES", false)
Stream.select_key = stateless("SELECT-KEY", true)
Stream.peek = stateless("PEEK", false)

function Stream:foreach(fn)
  check_fn(fn, "foreach", "its argument")
  new_node(self.job, "FOREACH", { self.node }, { fn = fn })
end

function Stream:merge(other)
  if getmetatable(other) ~= Stream then fail("merge: expected a stream") end
  if other.job ~= self.job then fail("merge: the streams belong to different jobs") end
  local node = new_node(self.job, "MERGE", { self.node, other.node })
  return stream_of(self.job, node, self.key_changed or other.key_changed,
                   self.windowed_key and other.windowed_key)
end

-- to(topic or fn(key, value) -> topic, {key = serde, value = serde})
function Stream:to(topic, opts)
  opts = check_opts(opts, "to", { key = true, value = true })
  if type(topic) == "string" then
    check_name(topic, "to", "the topic name")
  elseif type(topic) ~= "function" then
    fail("to: expected a topic name or a function returning one")
  end
  if self.windowed_key and (opts.key == "string" or opts.key == "bytes") then
    fail(fmt("to: the keys of a windowed table are { key = K, start = ms, [\"end\"] = ms }, " ..
             "which the %s serde cannot write: use the default or json serde, or map the key " ..
             "first (map or select_key)", opts.key))
  end
  local kser = resolve_serde(opts.key, "to", "key", "default")
  local vser = resolve_serde(opts.value, "to", "value", "default")
  local node = new_node(self.job, "SINK", { self.node }, {
    topic = topic, kenc = kser.encode, venc = vser.encode,
  })
  return node
end

-- repartition{name = ..., key = serde}: through an internal topic, so that
-- records with equal keys meet in one task.
function Stream:repartition(opts)
  opts = check_opts(opts, "repartition", { name = true, key = true })
  if opts.name == nil then
    fail("repartition: give it a name, e.g. s:repartition{name = \"by-user\"} " ..
         "(internal topic names come from names, never from counters)")
  end
  check_name(opts.name, "repartition", "the name")
  local job = self.job
  local kser = resolve_serde(opts.key, "repartition", "key", "string")
  local topic = fmt("%s-%s-repartition", job.name, opts.name)
  local sink = new_node(job, "REPARTITION-SINK", { self.node }, { topic = topic, kenc = kser.encode })
  local src = new_node(job, "REPARTITION-SOURCE", {}, { topics = { topic }, internal = true,
                                                        repartition_of = sink, kdec = kser.decode })
  sink.source = src
  return stream_of(job, src, false)
end

-- split():branch(pred, name):...:default_branch(name) -> { [name] = stream }
function Stream:split(opts)
  opts = check_opts(opts, "split", { prefix = true })
  local node = new_node(self.job, "SPLIT", { self.node }, { branches = {} })
  return setmetatable({ stream = self, node = node, prefix = opts.prefix or "",
                        result = {} }, Splitter)
end

local function add_branch(self, pred, name, method)
  if name == nil then name = tostring(#self.node.branches + 1) end
  if type(name) ~= "string" then fail(method .. ": the branch name must be a string") end
  local full = self.prefix .. name
  if self.result[full] then fail(fmt("%s: the branch %q exists already", method, full)) end
  local b = new_node(self.stream.job, "BRANCH", { self.node }, { pred = pred })
  self.node.branches[#self.node.branches + 1] = b
  self.result[full] = stream_of(self.stream.job, b, self.stream.key_changed,
                                self.stream.windowed_key)
end

function Splitter:branch(pred, name)
  check_fn(pred, "branch", "the predicate")
  add_branch(self, pred, name, "branch")
  return self
end

function Splitter:default_branch(name)
  add_branch(self, nil, name or "default", "default_branch")
  return self.result
end

function Splitter:no_default_branch()
  return self.result
end

---------------------------------------------------------------------------
-- Grouping and aggregation
---------------------------------------------------------------------------

function Stream:group_by_key(opts)
  opts = check_opts(opts, "group_by_key", { key = true })
  return setmetatable({ stream = self, key_fn = false, repartition = self.key_changed,
                        kser = opts.key or false }, Grouped)
end

function Stream:group_by(fn, opts)
  check_fn(fn, "group_by", "the key selector")
  opts = check_opts(opts, "group_by", { key = true })
  return setmetatable({ stream = self, key_fn = fn, repartition = true,
                        kser = opts.key or false }, Grouped)
end

-- The node that feeds an aggregation: the stream itself, or (after a key
-- change) a repartition through "<job>-<store>-repartition".
local function aggregation_input(g, store_name, kser)
  local job = g.stream.job
  local parent = g.stream.node
  if g.key_fn then
    parent = new_node(job, "SELECT-KEY", { parent }, { fn = g.key_fn, group_by = true })
  end
  if not g.repartition then return parent end
  local topic = fmt("%s-%s-repartition", job.name, store_name)
  local sink = new_node(job, "REPARTITION-SINK", { parent }, { topic = topic, kenc = kser.encode })
  local src = new_node(job, "REPARTITION-SOURCE", {}, { topics = { topic }, internal = true,
                                                        repartition_of = sink, kdec = kser.decode })
  sink.source = src
  return src
end

local function aggregate_node(g, kind, store_name, fields, method)
  local job = g.stream.job
  check_new_store(job, store_name, method)
  local kser = resolve_serde(g.kser, method, "key", "string")
  local input = aggregation_input(g, store_name, kser)
  local st = add_store(job, store_name, method)
  fields.store = st
  fields.kenc, fields.kdec = kser.encode, kser.decode
  local node = new_node(job, kind, { input }, fields)
  st.node = node
  return table_of(job, node, st)
end

function Grouped:count(store)
  return aggregate_node(self, "COUNT", store, {}, "count")
end

function Grouped:reduce(fn, store)
  check_fn(fn, "reduce", "the reducer")
  return aggregate_node(self, "REDUCE", store, { fn = fn }, "reduce")
end

function Grouped:aggregate(init, fn, store)
  check_fn(init, "aggregate", "the initializer")
  check_fn(fn, "aggregate", "the aggregator")
  return aggregate_node(self, "AGGREGATE", store, { init = init, fn = fn }, "aggregate")
end

---------------------------------------------------------------------------
-- Windows (docs/windows-and-joins.md): grouped:window{...} then count,
-- reduce or aggregate into a window store; the result is a table keyed by
-- windowed keys { key = K, start = ms, ["end"] = ms }.
---------------------------------------------------------------------------

local WindowedGrouped = {}
WindowedGrouped.__index = unknown_method("windowed stream", WindowedGrouped)

local WINDOW_TYPES = { "tumbling", "hopping", "sliding", "session" }

-- Window stores declare { window = true, retention = ms }: the runtime
-- opens them with store_window_open and expires windows that ended more
-- than `retention` before stream time (joins use the same fields).
function Grouped:window(spec)
  spec = check_opts(spec, "window", { tumbling = true, hopping = true, advance = true,
                                      sliding = true, session = true, grace = true,
                                      retention = true, late = true })
  local wtype
  for _, t in ipairs(WINDOW_TYPES) do
    if spec[t] ~= nil then
      if wtype then fail(fmt("window: give one of tumbling, hopping, sliding, session; got %s and %s", wtype, t)) end
      wtype = t
    end
  end
  if not wtype then fail("window: give one of tumbling, hopping, sliding or session, e.g. {tumbling = \"1m\"}") end
  local size = duration(spec[wtype], "window", wtype)
  local advance = size
  if wtype == "hopping" then
    if spec.advance == nil then fail("window: hopping windows need advance, e.g. {hopping = \"5m\", advance = \"1m\"}") end
    advance = duration(spec.advance, "window", "advance")
    if advance > size then
      fail(fmt("window: advance (%d ms) must not exceed the window size (%d ms)", advance, size))
    end
  elseif spec.advance ~= nil then
    fail("window: advance applies to hopping windows only")
  end
  local grace = spec.grace == nil and 0 or duration(spec.grace, "window", "grace", true)
  -- What the operator reads back must outlive the grace period: sliding
  -- windows read windows starting up to 2 * size before a record.
  local min_ret = wtype == "sliding" and 2 * size + grace + 1 or size + grace
  local retention = min_ret
  if spec.retention ~= nil then
    retention = duration(spec.retention, "window", "retention")
    if retention < min_ret then
      fail(fmt("window: retention (%d ms) must be at least %s (%d ms)", retention,
               wtype == "sliding" and "2 * size + grace + 1" or "size + grace", min_ret))
    end
  end
  local late = spec.late or "drop"
  if late ~= "drop" and late ~= "dlq" then
    fail(fmt("window: late must be \"drop\" or \"dlq\", got %s", tostring(late)))
  end
  return setmetatable({ grouped = self, wtype = wtype, size = size, advance = advance,
                        grace = grace, retention = retention, late_dlq = late == "dlq" },
                      WindowedGrouped)
end

local function windowed_aggregate(w, store_name, fields, method)
  local g = w.grouped
  local job = g.stream.job
  check_new_store(job, store_name, method)
  local kser = resolve_serde(g.kser, method, "key", "string")
  local input = aggregation_input(g, store_name, kser)
  local st = add_store(job, store_name, method, { window = true, retention = w.retention })
  fields.store = st
  fields.kenc, fields.kdec = kser.encode, kser.decode
  fields.wtype, fields.size, fields.advance, fields.grace = w.wtype, w.size, w.advance, w.grace
  fields.late_dlq = w.late_dlq
  local node = new_node(job, "WINDOW-" .. w.wtype:upper() .. "-AGGREGATE", { input }, fields)
  st.node = node
  local t = table_of(job, node, st)
  t.windowed = w.wtype
  t.grace = w.grace
  return t
end

function WindowedGrouped:count(store)
  return windowed_aggregate(self, store, {
    count = true,
    init = function() return 0 end,
    fn = function(_, _, agg) return agg + 1 end,
    merger = function(_, a, b) return a + b end,
  }, "count")
end

function WindowedGrouped:reduce(fn, store)
  check_fn(fn, "reduce", "the reducer")
  return windowed_aggregate(self, store, {
    init = function() return nil end,
    fn = function(_, v, agg) if agg == nil then return v end return fn(agg, v) end,
    merger = function(_, a, b)
      if a == nil then return b elseif b == nil then return a end
      return fn(a, b)
    end,
  }, "reduce")
end

-- aggregate(init, fn(key, value, agg) -> agg[, merger(key, agg1, agg2) -> agg], store):
-- session windows need the merger (Kafka Streams' Merger), others refuse it.
function WindowedGrouped:aggregate(init, fn, merger, store)
  check_fn(init, "aggregate", "the initializer")
  check_fn(fn, "aggregate", "the aggregator")
  if self.wtype == "session" then
    check_fn(merger, "aggregate", "the session merger (session windows merge aggregates)")
  elseif store == nil and type(merger) ~= "function" then
    store, merger = merger, nil
  else
    fail("aggregate: only session windows take a merger")
  end
  return windowed_aggregate(self, store, { init = init, fn = fn, merger = merger }, "aggregate")
end

-- Punctuators: job:punctuate (user functions) and suppression (interval
-- 0: on every advance of stream time). Ids index job.punctuators.
local function add_punctuator(job, p)
  local list = rawget(job, "punctuators")
  if not list then list = {}; rawset(job, "punctuators", list) end
  list[#list + 1] = p
  p.id = #list
  return p
end

-- table:suppress{ until = "window_close" }: one final result per window,
-- when stream time reaches its end + grace (+ 1 for sliding and session
-- windows, whose ends are inclusive).
-- table:suppress{ until = "time_limit", time = d[, max_records = n] }: per
-- key, the latest update once `time` of stream time has passed since the
-- key's first buffered update; beyond max_records buffered keys, the
-- oldest are emitted early (Kafka's BufferConfig emitEarlyWhenFull).
-- The buffer is a store ({name}, default "<table's store>-suppress") with
-- a changelog.
function Table:suppress(opts)
  opts = check_opts(opts, "suppress", { ["until"] = true, time = true, max_records = true,
                                        name = true })
  local mode = opts["until"]
  if mode ~= "window_close" and mode ~= "time_limit" then
    fail(fmt("suppress: until must be \"window_close\" or \"time_limit\", got %s", tostring(mode)))
  end
  local windowed = rawget(self, "windowed") or false
  local fields = { mode = mode, windowed = windowed, grace = rawget(self, "grace") or 0 }
  if mode == "window_close" then
    if not windowed then
      fail("suppress: until = \"window_close\" needs a windowed table (group_by_key():window{...}:count())")
    end
    if opts.time ~= nil or opts.max_records ~= nil then
      fail("suppress: time and max_records apply to until = \"time_limit\" only (window_close buffers every open window)")
    end
  else
    if opts.time == nil then fail("suppress: until = \"time_limit\" needs time, e.g. time = \"10s\"") end
    fields.time = duration(opts.time, "suppress", "time", true)
    if opts.max_records ~= nil then
      if math_type(opts.max_records) ~= "integer" or opts.max_records < 1 then
        fail(fmt("suppress: max_records must be an integer of at least 1, got %s", tostring(opts.max_records)))
      end
      fields.max_records = opts.max_records
    end
  end
  local name = opts.name
  if name == nil then
    if not self.store then
      fail("suppress: give the buffer a name, e.g. suppress{until = ..., name = \"final-counts\"}")
    end
    name = self.store.name .. "-suppress"
  end
  local job = self.job
  local st = add_store(job, name, "suppress")
  -- The key serde of the table: the aggregation's (windowed tables add
  -- start and end).
  local src = self.node
  fields.kenc = src.kenc or encode_default
  fields.kdec = src.kdec or builtin_serdes.string.decode
  fields.inclusive = windowed == "sliding" or windowed == "session"
  fields.store = st
  fields.table = true
  local node = new_node(job, "SUPPRESS", { self.node }, fields)
  st.node = node
  node.punct = add_punctuator(job, { node = node, interval = 0, type = "stream_time" })
  local t = table_of(job, node, nil)
  if windowed then t.windowed = windowed; t.grace = fields.grace end
  return t
end

-- job:punctuate(interval, fn(timestamp, p), { type = "stream_time" | "wall_clock",
--                                           stores = { names } })
-- fn runs in every task of the sub-topology that owns the named stores
-- (the first sub-topology without stores) and may read those stores
-- (p:get(store, key), p:range(store) -> { {key, value}, ... }) and emit
-- records (p:emit(topic, key, value)).
function Job:punctuate(interval, fn, opts)
  local ms = duration(interval, "punctuate", "the interval")
  check_fn(fn, "punctuate", "the punctuator")
  opts = check_opts(opts, "punctuate", { type = true, stores = true })
  local ptype = opts.type or "stream_time"
  if ptype ~= "stream_time" and ptype ~= "wall_clock" then
    fail(fmt("punctuate: type must be \"stream_time\" or \"wall_clock\", got %s", tostring(ptype)))
  end
  local stores = opts.stores or {}
  if type(stores) ~= "table" then fail("punctuate: stores must be a list of store names") end
  for _, n in ipairs(stores) do check_name(n, "punctuate", "a store name") end
  add_punctuator(self, { fn = fn, interval = ms, type = ptype, stores = stores, where = where() })
end

---------------------------------------------------------------------------
-- Tables
---------------------------------------------------------------------------

local function table_op(kind)
  return function(self, fn)
    check_fn(fn, method_name(kind), "its argument")
    local node = new_node(self.job, kind, { self.node }, { fn = fn, table = true })
    return table_of(self.job, node, nil)
  end
end

Table.filter = table_op("TABLE-FILTER")
Table.filter_not = table_op("TABLE-FILTER-NOT")
Table.map_values = table_op("TABLE-MAP-VALUES")

function Table:to_stream()
  local node = new_node(self.job, "TO-STREAM", { self.node })
  return stream_of(self.job, node, false, rawget(self, "windowed") and true)
end

-- table:group_by(fn(key, value) -> new_key, new_value)
function Table:group_by(fn, opts)
  check_fn(fn, "group_by", "the selector")
  opts = check_opts(opts, "group_by", { key = true })
  return setmetatable({ tbl = self, fn = fn, kser = opts.key or false }, GroupedTable)
end

local function table_aggregate(g, kind, store_name, fields, method)
  local job = g.tbl.job
  check_new_store(job, store_name, method)
  local kser = resolve_serde(g.kser, method, "key", "string")
  local topic = fmt("%s-%s-repartition", job.name, store_name)
  local sel = new_node(job, "TABLE-GROUP-BY", { g.tbl.node }, { fn = g.fn, table = true,
                                                               kenc = kser.encode })
  local sink = new_node(job, "REPARTITION-SINK", { sel }, { topic = topic, changes = true,
                                                           kenc = kser.encode })
  local src = new_node(job, "REPARTITION-SOURCE", {}, { topics = { topic }, internal = true,
                                                        changes = true, repartition_of = sink,
                                                        kdec = kser.decode })
  sink.source = src
  local st = add_store(job, store_name, method)
  fields.store = st
  fields.kenc, fields.kdec = kser.encode, kser.decode
  local node = new_node(job, kind, { src }, fields)
  st.node = node
  return table_of(job, node, st)
end

function GroupedTable:count(store)
  return table_aggregate(self, "TABLE-AGGREGATE", store, {
    init = function() return 0 end,
    adder = function(_, _, agg) return agg + 1 end,
    subtractor = function(_, _, agg) return agg - 1 end,
  }, "count")
end

function GroupedTable:reduce(adder, subtractor, store)
  check_fn(adder, "reduce", "the adder")
  check_fn(subtractor, "reduce", "the subtractor")
  return table_aggregate(self, "TABLE-AGGREGATE", store, {
    adder = function(_, v, agg) if agg == nil then return v end return adder(agg, v) end,
    subtractor = function(_, v, agg) return subtractor(agg, v) end,
  }, "reduce")
end

function GroupedTable:aggregate(init, adder, subtractor, store)
  check_fn(init, "aggregate", "the initializer")
  check_fn(adder, "aggregate", "the adder")
  check_fn(subtractor, "aggregate", "the subtractor")
  return table_aggregate(self, "TABLE-AGGREGATE", store, {
    init = init, adder = adder, subtractor = subtractor,
  }, "aggregate")
end

---------------------------------------------------------------------------
-- Joins (docs/windows-and-joins.md): stream-table, table-table and
-- stream-global-table joins. A join reads the other side's value through
-- a value getter (compiled below): the store of the nearest materialised
-- table, with the filters and map_values in between applied on read, as
-- Kafka Streams' KTableValueGetter does, so no join needs its own copy of
-- a table.
---------------------------------------------------------------------------

local GlobalTable = {}
GlobalTable.__index = unknown_method("global table", GlobalTable)

-- The key serde (encode, decode) a table's store is keyed with: that of
-- its nearest materialised ancestor.
local function table_key_serde(node)
  while node do
    if node.kenc then return node.kenc, node.kdec end
    node = node.parents[1]
  end
  return builtin_serdes.string.encode, builtin_serdes.string.decode
end

-- A name for the state of a join that has none: from the join's inputs,
-- never from a counter, so that editing other parts of a job keeps it.
local function origin_name(node)
  while node do
    if node.store then return node.store.name end
    if node.topics then return node.topics[1] end
    node = node.parents[1]
  end
  return "join"
end

local function join_name(job, opts, method, default)
  local name = opts.name or default
  check_name(name, method, "the join name")
  -- (rawget: a job's fields are strict, see unknown_method)
  local names = rawget(job, "join_names")
  if not names then names = {}; job.join_names = names end
  if names[name] then
    fail(fmt("%s: the join name %q is used twice; give the join a name: { name = \"...\" }",
             method, name))
  end
  names[name] = true
  return name
end

-- A stream whose key changed goes through "<job>-<name>-repartition"
-- first, keyed with the table's key serde, so that each record lands in
-- the partition (and task) that holds its key in the table, as Kafka
-- Streams repartitions before a join.
local function join_input(stream, name, kenc, kdec)
  local job = stream.job
  local topic = fmt("%s-%s-repartition", job.name, name)
  local sink = new_node(job, "REPARTITION-SINK", { stream.node }, { topic = topic, kenc = kenc })
  local src = new_node(job, "REPARTITION-SOURCE", {}, { topics = { topic }, internal = true,
                                                        repartition_of = sink, kdec = kdec })
  sink.source = src
  return src
end

local function stream_table_join(self, tbl, joiner, opts, method, left)
  check_fn(joiner, method, "the joiner")
  opts = check_opts(opts, method, { name = true })
  if tbl.job ~= self.job then fail(method .. ": the stream and the table belong to different jobs") end
  local kenc, kdec = table_key_serde(tbl.node)
  if opts.name ~= nil then check_name(opts.name, method, "the join name") end
  local input = self.node
  if self.key_changed then
    -- The name only names the repartition topic: needed (and unique) then.
    local name = join_name(self.job, opts, method,
                           fmt("%s-%s-join", origin_name(self.node), origin_name(tbl.node)))
    input = join_input(self, name, kenc, kdec)
  end
  -- The table is read, not followed: `co` keeps it in the sub-topology
  -- (and task) of the join without making the join one of its children.
  local node = new_node(self.job, "STREAM-TABLE-JOIN", { input }, {
    other = tbl.node, co = { tbl.node }, joiner = joiner, left = left, copartition = where(),
  })
  return stream_of(self.job, node, false)
end

local function stream_global_join(self, g, key_fn, joiner, method, left)
  if type(key_fn) == "function" and joiner == nil then
    fail(fmt("%s: a global table join takes a key function and a joiner: " ..
             "%s(global, fn(key, value) -> the global table's key, fn(value, row) -> joined); " ..
             "only one function was given", method, method))
  end
  check_fn(key_fn, method, "the key selector (fn(key, value) -> the global table's key)")
  check_fn(joiner, method, "the joiner")
  if g.job ~= self.job then fail(method .. ": the stream and the global table belong to different jobs") end
  local node = new_node(self.job, "STREAM-GLOBAL-JOIN", { self.node }, {
    other = g.node, global_ref = g.store, key_fn = key_fn, joiner = joiner, left = left,
  })
  return stream_of(self.job, node, self.key_changed)
end

-- Stream-stream joins (Kafka Streams' KStreamKStreamJoin, 3.x): each side
-- buffers its records in a window store for 2 * within + grace; a record
-- joins the other side's records of its key within `within` of it; with
-- left/outer, a record without a partner waits in "<name>-outer-join-store"
-- until stream time passes its timestamp + within + grace, and only then
-- gives a result with nil for the other side.
local function stream_stream_join(self, other, joiner, opts, method, mode)
  check_fn(joiner, method, "the joiner")
  opts = check_opts(opts, method, { within = true, grace = true, name = true, key = true,
                                    late = true })
  if other.job ~= self.job then fail(method .. ": the streams belong to different jobs") end
  if opts.within == nil then
    fail(method .. ": a stream-stream join needs { within = duration }, e.g. { within = \"5m\" }")
  end
  local within = duration(opts.within, method, "within", true)
  local grace = opts.grace == nil and 0 or duration(opts.grace, method, "grace", true)
  local late = opts.late or "drop"
  if late ~= "drop" and late ~= "dlq" then
    fail(fmt("%s: late must be \"drop\" or \"dlq\", got %s", method, tostring(late)))
  end
  local job = self.job
  local name = join_name(job, opts, method,
                         fmt("%s-%s-join", origin_name(self.node), origin_name(other.node)))
  local kser = resolve_serde(opts.key, method, "key", "string")
  local kenc, kdec = kser.encode, kser.decode
  local lin = self.key_changed and join_input(self, name .. "-left", kenc, kdec) or self.node
  local rin = other.key_changed and join_input(other, name .. "-right", kenc, kdec) or other.node
  local retention = 2 * within + grace
  local this_st = add_store(job, name .. "-this-join-store", method,
                            { window = true, retention = retention })
  local other_st = add_store(job, name .. "-other-join-store", method,
                             { window = true, retention = retention })
  local outer_st = mode ~= "inner" and add_store(job, name .. "-outer-join-store", method) or nil
  local fields = { within = within, grace = grace, joiner = joiner, mode = mode, kenc = kenc,
                   kdec = kdec, this_store = this_st, other_store = other_st,
                   outer_store = outer_st, late_dlq = late == "dlq",
                   waiting = {} } -- shared by both sides: see min_waiting
  local function side(kind, parent, left)
    local f = {}
    for k, v in pairs(fields) do f[k] = v end
    f.left = left
    return new_node(job, kind, { parent }, f)
  end
  local l = side("STREAM-JOIN-THIS", lin, true)
  local r = side("STREAM-JOIN-OTHER", rin, false)
  local node = new_node(job, "STREAM-JOIN-MERGE", { l, r }, { copartition = where() })
  this_st.node, other_st.node = l, r
  if outer_st then outer_st.node = l end
  return stream_of(job, node, false)
end

local function stream_join(method, left)
  return function(self, other, a, b)
    local mt = getmetatable(other)
    if mt == Table then
      if rawget(other, "windowed") then fail(method .. ": a windowed table cannot be joined by key") end
      return stream_table_join(self, other, a, b, method, left)
    end
    if mt == GlobalTable then return stream_global_join(self, other, a, b, method, left) end
    if mt == Stream then return stream_stream_join(self, other, a, b, method, left and "left" or "inner") end
    fail(fmt("%s: expected a stream, a table or a global table to join with, got %s", method,
             type(other)))
  end
end

Stream.join = stream_join("join", false)
Stream.left_join = stream_join("left_join", true)

function Stream:outer_join(other, joiner, opts)
  if getmetatable(other) ~= Stream then
    fail("outer_join: a stream outer-joins a stream only (Kafka Streams has no stream-table outer join)")
  end
  return stream_stream_join(self, other, joiner, opts, "outer_join", "outer")
end

-- Table-table joins: each side's updates go through a node that reads the
-- other side and joins; both feed the result node (materialised when a
-- store is named), as Kafka Streams' KTableKTableJoin and JoinMerger.
local function table_table_join(mode, method)
  return function(self, other, joiner, opts)
    if getmetatable(other) ~= Table then
      fail(fmt("%s: expected a table to join with, got %s", method,
               getmetatable(other) == Stream and "a stream" or type(other)))
    end
    if other.job ~= self.job then fail(method .. ": the tables belong to different jobs") end
    check_fn(joiner, method, "the joiner")
    opts = check_opts(opts, method, { store = true })
    local job = self.job
    local this = new_node(job, "TABLE-JOIN-THIS", { self.node }, {
      other = other.node, co = { other.node }, joiner = joiner, mode = mode, this_left = true,
      table = true })
    local that = new_node(job, "TABLE-JOIN-OTHER", { other.node }, {
      other = self.node, co = { self.node }, joiner = joiner, mode = mode, this_left = false,
      table = true })
    local kenc, kdec = table_key_serde(self.node)
    local fields = { table = true, mode = mode, joiner = joiner, left_node = self.node,
                     right_node = other.node }
    local st
    if opts.store ~= nil then
      st = add_store(job, opts.store, method)
      fields.store, fields.kenc, fields.kdec = st, kenc, kdec
    end
    fields.copartition = where()
    local node = new_node(job, "TABLE-JOIN", { this, that }, fields)
    if st then st.node = node end
    return table_of(job, node, st)
  end
end

Table.join = table_table_join("inner", "join")
Table.left_join = table_table_join("left", "left_join")
Table.outer_join = table_table_join("outer", "outer_join")

-- job:global_table(topic, {key = serde, value = serde, store = name}): the
-- whole topic, every partition, in every task that joins with it.
function Job:global_table(topic, opts)
  opts = check_opts(opts, "global_table", { key = true, value = true, store = true })
  check_name(topic, "global_table", "the topic name")
  if self.sources[topic] then
    fail(fmt("global_table: the topic %q is already a source of this job", topic))
  end
  local kser = resolve_serde(opts.key, "global_table", "key", "string")
  local vser = resolve_serde(opts.value, "global_table", "value", "string")
  local st = add_store(self, opts.store or (topic .. "-global"), "global_table")
  st.global_topic = topic
  st.changelog = false -- the topic itself restores it, as a Kafka Streams global store
  self.counter = self.counter + 1
  local node = { kind = "GLOBAL-TABLE", id = self.counter, name = fmt("GLOBAL-TABLE-%d", self.counter),
                 parents = {}, children = {}, topics = { topic }, store = st, global = true,
                 kenc = kser.encode, kdec = kser.decode, vdec = vser.decode }
  st.node = node
  self.sources[topic] = node
  local globals = rawget(self, "globals")
  if not globals then globals = {}; self.globals = globals end
  globals[#globals + 1] = node
  return setmetatable({ job = self, node = node, store = st }, GlobalTable)
end

---------------------------------------------------------------------------
-- Compilation: sub-topologies and closures
---------------------------------------------------------------------------

-- The operator whose user function runs, for the DLQ headers and error
-- messages: every compiled operator sets it, so it is an upvalue (one
-- SETUPVAL), not a table field behind a call; the runtime reads it with
-- runnel._current_op() only when a record fails.
local current_op = ""

function runnel._current_op() return current_op end

-- Records that entered each operator, by operator name (counted where the
-- operator sets current_op: one table update, no call); the runtime reads
-- them with runnel._op_counts() for the per-operator metrics.
local op_in = {}

function runnel._op_counts() return op_in end

-- Forwarding to the children of a node, specialised for 0, 1 and n.
local function fanout(fns)
  local n = #fns
  if n == 0 then return function() end end
  if n == 1 then return fns[1] end
  if n == 2 then
    local a, b = fns[1], fns[2]
    return function(k, v, o) a(k, v, o); b(k, v, o) end
  end
  return function(k, v, o) for i = 1, n do fns[i](k, v, o) end end
end

local compile_node

local function children_fn(job, node, built)
  local fns = {}
  for i, c in ipairs(node.children) do fns[i] = compile_node(job, c, built) end
  return fanout(fns)
end

local function decode_store(b)
  if b == nil then return nil end
  return json.decode(b)
end

local function encode_store(v)
  if v == nil then return nil end
  return json.encode(v)
end

local builders = {}

builders["FILTER"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; if fn(k, v) then return nxt(k, v) end end
end
builders["FILTER-NOT"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; if not fn(k, v) then return nxt(k, v) end end
end
builders["MAP"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; return nxt(fn(k, v)) end
end
builders["MAP-VALUES"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; return nxt(k, fn(v, k)) end
end
builders["SELECT-KEY"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; return nxt(fn(k, v), v) end
end
builders["PEEK"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; fn(k, v); return nxt(k, v) end
end
builders["FOREACH"] = function(node)
  local fn, name = node.fn, node.name
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; fn(k, v) end
end
builders["MERGE"] = function(_, nxt) return nxt end
builders["TO-STREAM"] = function(_, nxt) return function(k, v) return nxt(k, v) end end

local function check_list(r, name, what)
  if type(r) ~= "table" then
    error(fmt("%s must return a list of %s, got %s", name, what, type(r)), 0)
  end
end

builders["FLAT-MAP"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    local r = fn(k, v)
    check_list(r, name, "{key, value} pairs")
    for i = 1, #r do
      local kv = r[i]
      if type(kv) ~= "table" then
        error(fmt("%s must return a list of {key, value} pairs; item %d is a %s", name, i, type(kv)), 0)
      end
      if kv.key ~= nil or kv.value ~= nil then nxt(kv.key, kv.value) else nxt(kv[1], kv[2]) end
    end
  end
end
builders["FLAT-MAP-VALUES"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    local r = fn(v, k)
    check_list(r, name, "values")
    for i = 1, #r do nxt(k, r[i]) end
  end
end

builders["SPLIT"] = function(node, _, job, built)
  local preds, outs = {}, {}
  for i, b in ipairs(node.branches) do
    preds[i] = b.pred
    outs[i] = children_fn(job, b, built)
  end
  local n, name = #node.branches, node.name -- preds may hold a nil (the default)
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    for i = 1, n do
      local p = preds[i]
      if p == nil or p(k, v) then return outs[i](k, v) end
    end
  end
end

builders["SINK"] = function(node)
  local topic, kenc, venc, name = node.topic, node.kenc, node.venc, node.name
  if type(topic) == "function" then
    local choose = topic
    return function(k, v)
      current_op = name; op_in[name] = op_in[name] + 1
      local t = choose(k, v)
      if type(t) ~= "string" or not t:match(NAME_PATTERN) then
        error(fmt("%s: the topic function returned %s, not a topic name", name,
                  type(t) == "string" and fmt("%q", t) or type(t)), 0)
      end
      emit(t, kenc(k), venc(v))
    end
  end
  return function(k, v) current_op = name; op_in[name] = op_in[name] + 1; emit(topic, kenc(k), venc(v)) end
end

builders["REPARTITION-SINK"] = function(node)
  local topic, name, key_bytes = node.topic, node.name, node.kenc
  if node.changes then
    -- A table's change: {"n": new, "o": old}, JSON, so that the grouped
    -- table downstream can subtract the old value and add the new one.
    return function(k, v, o)
      current_op = name; op_in[name] = op_in[name] + 1
      if k == nil then return end
      emit(topic, key_bytes(k), json.encode({ n = v == nil and runnel.null or v,
                                              o = o == nil and runnel.null or o }))
    end
  end
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    if k == nil then return end -- as Kafka Streams: a null key cannot be grouped
    emit(topic, key_bytes(k), encode_store(v))
  end
end

-- A count is stored as JSON like every aggregate, but the JSON text of an
-- integer is its decimal digits, which tonumber reads and _store_put writes
-- for an integer: the per-record path skips the JSON codec, and anything
-- else (a float) still goes through it.
builders["COUNT"] = function(node, nxt)
  local idx, name, key_bytes = node.store.index, node.name, node.kenc
  return function(k, v)
    if k == nil or v == nil then return end -- ignored, as in Kafka Streams
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = key_bytes(k)
    local ob, old = store_get(idx, kb), nil
    if ob ~= nil then
      old = tonumber(ob)
      if math_type(old) ~= "integer" then old = decode_store(ob) end
    end
    local new = (old or 0) + 1
    store_put(idx, kb, math_type(new) == "integer" and new or encode_store(new))
    return nxt(k, new, old)
  end
end
builders["REDUCE"] = function(node, nxt)
  local fn, idx, name, key_bytes = node.fn, node.store.index, node.name, node.kenc
  return function(k, v)
    if k == nil or v == nil then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = key_bytes(k)
    local old = decode_store(store_get(idx, kb))
    local new = v
    if old ~= nil then new = fn(old, v) end
    store_put(idx, kb, encode_store(new))
    return nxt(k, new, old)
  end
end
builders["AGGREGATE"] = function(node, nxt)
  local init, fn, idx, name, key_bytes = node.init, node.fn, node.store.index, node.name, node.kenc
  return function(k, v)
    if k == nil or v == nil then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = key_bytes(k)
    local old = decode_store(store_get(idx, kb))
    local agg = old
    if agg == nil then agg = init() end
    local new = fn(k, v, agg)
    store_put(idx, kb, encode_store(new))
    return nxt(k, new, old)
  end
end

-- Tables forward (key, new, old).
builders["TABLE-SOURCE"] = function(node, nxt)
  local idx, name, key_bytes = node.store.index, node.name, node.kenc
  return function(k, v)
    if k == nil then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = key_bytes(k)
    local old = decode_store(store_get(idx, kb))
    store_put(idx, kb, encode_store(v)) -- nil deletes: a tombstone
    if v == nil and old == nil then return end
    return nxt(k, v, old)
  end
end
builders["TABLE-FILTER"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v, o)
    current_op = name; op_in[name] = op_in[name] + 1
    local nv = (v ~= nil and fn(k, v)) and v or nil
    local ov = (o ~= nil and fn(k, o)) and o or nil
    if nv == nil and ov == nil then return end
    return nxt(k, nv, ov)
  end
end
builders["TABLE-FILTER-NOT"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v, o)
    current_op = name; op_in[name] = op_in[name] + 1
    local nv = (v ~= nil and not fn(k, v)) and v or nil
    local ov = (o ~= nil and not fn(k, o)) and o or nil
    if nv == nil and ov == nil then return end
    return nxt(k, nv, ov)
  end
end
builders["TABLE-MAP-VALUES"] = function(node, nxt)
  local fn, name = node.fn, node.name
  return function(k, v, o)
    current_op = name; op_in[name] = op_in[name] + 1
    local nv = v ~= nil and fn(v, k) or nil
    local ov = o ~= nil and fn(o, k) or nil
    return nxt(k, nv, ov)
  end
end
-- The selector maps (key, value) to (group key, group value) for both the
-- old and the new row; when the group key changes, the old row is
-- subtracted under its old group and added under its new one.
builders["TABLE-GROUP-BY"] = function(node, nxt)
  local fn, name, key_bytes = node.fn, node.name, node.kenc
  return function(k, v, o)
    current_op = name; op_in[name] = op_in[name] + 1
    local nk, nv, ok, ov
    if v ~= nil then nk, nv = fn(k, v) end
    if o ~= nil then ok, ov = fn(k, o) end
    if ok ~= nil and nk ~= nil and key_bytes(ok) == key_bytes(nk) then
      return nxt(nk, nv, ov)
    end
    if ok ~= nil then nxt(ok, nil, ov) end
    if nk ~= nil then nxt(nk, nv, nil) end
  end
end
builders["TABLE-AGGREGATE"] = function(node, nxt)
  local init, add, sub, idx, name = node.init, node.adder, node.subtractor, node.store.index,
                                     node.name
  local key_bytes = node.kenc
  local null = runnel.null
  return function(k, change)
    if k == nil or type(change) ~= "table" then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = key_bytes(k)
    local old = decode_store(store_get(idx, kb))
    local agg = old
    if agg == nil and init then agg = init() end
    local ov, nv = change.o, change.n
    if ov ~= nil and ov ~= null and agg ~= nil then agg = sub(k, ov, agg) end
    if nv ~= nil and nv ~= null then agg = add(k, nv, agg) end
    store_put(idx, kb, encode_store(agg))
    return nxt(k, agg, old)
  end
end

---------------------------------------------------------------------------
-- Join operators (docs/windows-and-joins.md)
---------------------------------------------------------------------------

-- getter_of(table node) -> function(key) -> the table's current value for
-- key, or nil: the store of a materialised node (a new value for each
-- lookup, which the caller may change: runnel._store_get_row), or the
-- parent's getter with this node's filter/map_values/join applied on read.
local getter_of

-- The joined value of (left, right) for a join mode, or nil when the mode
-- has no row for that pair (inner: both sides; left: the left side;
-- outer: either side).
local function join_values(mode, joiner, l, r, k)
  if l == nil then
    if mode ~= "outer" or r == nil then return nil end
  elseif r == nil and mode == "inner" then
    return nil
  end
  return joiner(l, r, k)
end

getter_of = function(node)
  if node.getter then return node.getter end
  local g
  local kind = node.kind
  if node.store then
    local idx, kenc = node.store.index, node.kenc
    g = function(k) return store_get_row(idx, kenc(k)) end
  elseif kind == "TABLE-FILTER" or kind == "TABLE-FILTER-NOT" then
    local pg, fn, keep = getter_of(node.parents[1]), node.fn, kind == "TABLE-FILTER"
    g = function(k)
      local v = pg(k)
      if v ~= nil and (not fn(k, v)) ~= keep then return v end
      return nil
    end
  elseif kind == "TABLE-MAP-VALUES" then
    local pg, fn = getter_of(node.parents[1]), node.fn
    g = function(k)
      local v = pg(k)
      if v ~= nil then return fn(v, k) end
      return nil
    end
  elseif kind == "TABLE-JOIN" then
    local lg, rg = getter_of(node.left_node), getter_of(node.right_node)
    local mode, joiner = node.mode, node.joiner
    g = function(k) return join_values(mode, joiner, lg(k), rg(k), k) end
  else
    error(fmt("%s cannot be read as a table (internal error)", node.name), 0)
  end
  node.getter = g
  return g
end

-- A stream record looks its key up in the table as of now (Kafka Streams'
-- KStreamKTableJoin): a null key or value is dropped; without a row, the
-- inner join drops the record and the left join joins it with nil.
builders["STREAM-TABLE-JOIN"] = function(node, nxt)
  local get, joiner, name, left = getter_of(node.other), node.joiner, node.name, node.left
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    if v == nil then return end
    -- A null key joins nothing: dropped by join, passed through with a nil
    -- table side by left_join (Kafka Streams 3.7+, KIP-962).
    if k == nil and not left then return end
    local r
    if k ~= nil then r = get(k) end
    if r == nil and not left then return end
    local j = joiner(v, r, k)
    if j == nil then return end
    return nxt(k, j)
  end
end

-- The global table's key comes from key_fn(key, value); the stream keeps
-- its key (Kafka Streams' KStream#join(GlobalKTable, KeyValueMapper, ..)).
builders["STREAM-GLOBAL-JOIN"] = function(node, nxt)
  local get, key_fn, joiner, name, left = getter_of(node.other), node.key_fn, node.joiner,
                                           node.name, node.left
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    if v == nil then return end
    local gk = key_fn(k, v)
    local r
    if gk ~= nil then r = get(gk) end
    if r == nil and not left then return end
    local j = joiner(v, r, k)
    if j == nil then return end
    return nxt(k, j)
  end
end

-- One side of a table-table join: (key, new, old) of this side against
-- the other side's current row gives (key, new joined, old joined); a
-- deleted row whose join existed gives (key, nil, old joined): a
-- tombstone downstream.
local function table_join_side(node, nxt)
  local get, joiner, mode, name, this_left = getter_of(node.other), node.joiner, node.mode,
                                             node.name, node.this_left
  return function(k, v, o)
    current_op = name; op_in[name] = op_in[name] + 1
    local r = get(k)
    local nj, oj
    if this_left then
      nj, oj = join_values(mode, joiner, v, r, k), join_values(mode, joiner, o, r, k)
    else
      nj, oj = join_values(mode, joiner, r, v, k), join_values(mode, joiner, r, o, k)
    end
    if nj == nil and oj == nil then return end
    return nxt(k, nj, oj)
  end
end
builders["TABLE-JOIN-THIS"] = table_join_side
builders["TABLE-JOIN-OTHER"] = table_join_side

-- The join's result; materialised, its store holds the rows and the old
-- value forwarded is the stored one.
builders["TABLE-JOIN"] = function(node, nxt)
  if not node.store then return nxt end
  local idx, kenc, name = node.store.index, node.kenc, node.name
  return function(k, v)
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = kenc(k)
    local old = decode_store(store_get(idx, kb))
    store_put(idx, kb, encode_store(v))
    if v == nil and old == nil then return end
    return nxt(k, v, old)
  end
end

-- Stream-stream joins (see stream_stream_join above). A side's window
-- store keeps, per (key bytes, timestamp), the JSON list of that side's
-- values (several records may share a key and a timestamp). The outer
-- join store's keys are 8-byte big-endian timestamp | "L" or "R" | key
-- bytes, so one range scan from the start finds every waiting record
-- whose window closed, oldest first (as Kafka Streams' outer join store,
-- ordered by TimestampedKeyAndJoinSide).
local spack_j, sunpack_j, ssub_j = string.pack, string.unpack, string.sub
local sj_store_range = runnel._store_range

local function sj_append(get, put, idx, kb, ts, v, outer)
  local list
  if outer then list = decode_store(store_get(idx, kb))
  else list = decode_store(get(idx, kb, ts, ts)) end
  list = list or {}
  list[#list + 1] = v
  if outer then store_put(idx, kb, encode_store(list)) else put(idx, kb, ts, ts, encode_store(list)) end
end

local function stream_join_side(node, nxt)
  local within, grace, joiner, mode, left = node.within, node.grace, node.joiner, node.mode, node.left
  local kenc, kdec, name, late_dlq = node.kenc, node.kdec, node.name, node.late_dlq
  local retention = 2 * within + grace -- the window stores' (stream_stream_join)
  local mine = (left and node.this_store or node.other_store).index
  local theirs = (left and node.other_store or node.this_store).index
  local outer = node.outer_store and node.outer_store.index
  -- Which sides wait for a partner: the left one (left, outer), the right
  -- one (outer).
  local i_wait = outer and (left or mode == "outer")
  local they_wait = outer and (not left or mode == "outer")
  local my_side, their_side = left and "L" or "R", left and "R" or "L"
  local wget, wput, wfetch = runnel._wstore_get, runnel._wstore_put, runnel._wstore_fetch
  local st_fn, late, ts_fn, set_ts_fn = runnel._stream_time, runnel._late,
                                        runnel.record.timestamp, runnel.record.set_timestamp
  -- The smallest timestamp waiting in the outer store, per partition (the
  -- Lua state serves one task per partition of this sub-topology), shared
  -- by both sides' operators; nil: unknown (after a restart), so the next
  -- record looks. It may be smaller than the truth (a partner removed a
  -- waiting record), never larger: then a scan finds nothing and fixes it.
  local min_waiting = node.waiting
  local partition_of = runnel.record.partition

  local function emit(k, v, ts, now_ts)
    if v == nil then return end
    if ts == now_ts then return nxt(k, v) end
    set_ts_fn(ts)
    nxt(k, v)
    set_ts_fn(now_ts)
  end

  -- Emits the waiting records whose window and grace have passed (stream
  -- time st), oldest first, with their own timestamps.
  local function emit_closed(st, now_ts, p)
    local m = min_waiting[p]
    local closed_before = st - within - grace -- waiting ts < this: closed
    if closed_before <= 0 or (m ~= nil and m >= closed_before) then return end
    local rows = sj_store_range(outer, nil, spack_j(">i8", closed_before), 0)
    for i = 1, #rows, 2 do
      local key = rows[i]
      store_put(outer, key, nil)
      local ts = sunpack_j(">i8", key)
      local side = ssub_j(key, 9, 9)
      local k = kdec(ssub_j(key, 10))
      local list = decode_store(rows[i + 1])
      for j = 1, #list do
        if side == "L" then emit(k, joiner(list[j], nil, k), ts, now_ts)
        else emit(k, joiner(nil, list[j], k), ts, now_ts) end
      end
    end
    local rest = sj_store_range(outer, nil, nil, 1)
    min_waiting[p] = rest[1] and sunpack_j(">i8", rest[1]) or math.maxinteger
  end

  local function half(k, v)
    if left then return joiner(v, nil, k) end
    return joiner(nil, v, k)
  end

  return function(k, v)
    if v == nil then return end -- as Kafka Streams: nothing to join
    current_op = name; op_in[name] = op_in[name] + 1
    local ts = ts_fn()
    if ts < 0 then
      error(fmt("%s: the record's timestamp %d is negative; joins need event time", name, ts), 0)
    end
    -- A null key has no partner: a side that waits for partners (left,
    -- outer) gives its half at once, an inner side drops it (Kafka
    -- Streams 3.7+, KIP-962).
    if k == nil then
      if i_wait then emit(k, half(k, v), ts, ts) end
      return
    end
    local st = st_fn()
    local p = partition_of()
    if outer and ts == st then emit_closed(st, ts, p) end
    local kb = kenc(k)
    -- As Kafka Streams (KStreamKStreamJoin, 3.x), an out-of-order record is
    -- not dropped for being late: it joins the partners the other side's
    -- store still retains. Only the stores forget: a record older than the
    -- retention is not stored (Kafka's window store skips a put into an
    -- expired segment) and partners older than it are not found.
    local expired = st - retention
    local stored = ts > expired
    if stored then sj_append(wget, wput, mine, kb, ts, v, false) end
    local from = ts - within
    if from <= expired then from = expired + 1 end
    local rows = from <= ts + within and wfetch(theirs, kb, from, ts + within) or {}
    local matched = false
    for i = 1, #rows, 3 do
      local ots = rows[i]
      local list = decode_store(rows[i + 2])
      matched = true
      if they_wait then store_put(outer, spack_j(">i8", ots) .. their_side .. kb, nil) end
      local out_ts = ots > ts and ots or ts
      for j = 1, #list do
        local jv
        if left then jv = joiner(v, list[j], k) else jv = joiner(list[j], v, k) end
        emit(k, jv, out_ts, ts)
      end
    end
    if not matched and i_wait then
      if ts + within < st then
        -- Its window is already past stream time: no partner can come any
        -- more within it, so the half result goes out now (Kafka's
        -- "timeTo < streamTime" shortcut; grace does not delay it).
        emit(k, half(k, v), ts, ts)
      else
        sj_append(nil, nil, outer, spack_j(">i8", ts) .. my_side .. kb, ts, v, true)
        local m = min_waiting[p]
        if m ~= nil and ts < m then min_waiting[p] = ts end
      end
    elseif not matched and not stored then
      -- Older than the retention and without a partner: nothing joined,
      -- nothing stored; counted (and sent to the DLQ with late = "dlq")
      -- like Kafka's dropped-records sensor for expired window-store puts.
      late(fmt("%s: late record: timestamp %d, stream time %d, retention %d ms (2 * within + " ..
               "grace): older than every record the join still holds", name, ts, st, retention),
           late_dlq)
    end
  end
end
builders["STREAM-JOIN-THIS"] = stream_join_side
builders["STREAM-JOIN-OTHER"] = stream_join_side
builders["STREAM-JOIN-MERGE"] = function(_, nxt) return nxt end

-- A global table's record: stored as it is (a tombstone deletes).
local function global_entry(node)
  local idx, kenc, kdec, vdec, name = node.store.index, node.kenc, node.kdec, node.vdec, node.name
  op_in[name] = 0
  return function(kb, vb)
    current_op = name; op_in[name] = op_in[name] + 1
    local k = kdec(kb)
    if k == nil then return end
    store_put(idx, kenc(k), encode_store(vdec(vb)))
  end
end

---------------------------------------------------------------------------
-- Windowed aggregations (Kafka Streams' KStreamWindowAggregate,
-- KStreamSlidingWindowAggregate and KStreamSessionWindowAggregate). A
-- window's value in its store is the 8-byte big-endian timestamp of its
-- latest record (the output timestamp, as Kafka's timestamped window
-- stores keep it) followed by the aggregate: for counts an 8-byte
-- big-endian integer (one string.pack, no number formatting per record),
-- JSON otherwise, nothing for nil.
---------------------------------------------------------------------------

local spack, sunpack, ssub = string.pack, string.unpack, string.sub
local wstore_get, wstore_put, wstore_fetch = runnel._wstore_get, runnel._wstore_put,
                                             runnel._wstore_fetch
local wcount_add = runnel._wcount_add
local stream_time, late_drop, window_time = runnel._stream_time, runnel._late,
                                           runnel._window_time
local rec_ts, set_ts = runnel.record.timestamp, runnel.record.set_timestamp
local mininteger = math.mininteger

local function wval_enc(agg, ts, count)
  if agg == nil then return spack(">i8", ts) end
  if count then return spack(">i8>i8", ts, agg) end
  return spack(">i8", ts) .. json.encode(agg)
end

-- -> agg, timestamp (nil, nil when absent)
local function wval_dec(b, count)
  if b == nil then return nil, nil end
  if count and #b == 16 then
    local ts, n = sunpack(">i8>i8", b)
    return n, ts
  end
  local ts = sunpack(">i8", b)
  if #b == 8 then return nil, ts end
  return json_decode(ssub(b, 9)), ts
end

-- Forwards a window's change with the window's timestamp (restoring the
-- record's own for the next operators).
local function wforward(nxt, k, s, e, new, old, wts, ts)
  local wk = setmetatable({ key = k, start = s, ["end"] = e }, Windowed)
  if wts == ts then return nxt(wk, new, old) end
  set_ts(wts)
  nxt(wk, new, old)
  set_ts(ts)
end

local function record_time(name)
  local ts = rec_ts()
  if ts < 0 then
    error(fmt("%s: the record's timestamp %d is negative; windows need event time", name, ts), 0)
  end
  return ts
end

local function late_message(name, ts, st, grace)
  return fmt("%s: late record: timestamp %d, stream time %d, grace %d ms: its windows are closed",
             name, ts, st, grace)
end

-- Tumbling and hopping windows: [start, start + size), starts at multiples
-- of advance. A window takes records while end + grace > stream time.
local function fixed_windows(node, nxt)
  local size, adv, grace, idx, kenc, name = node.size, node.advance, node.grace, node.store.index,
                                            node.kenc, node.name
  local init, fn, count, late_dlq = node.init, node.fn, node.count or false, node.late_dlq
  local forward = #node.children > 0 and wforward or function() end
  return function(k, v)
    if k == nil or v == nil then return end -- ignored, as in Kafka Streams
    current_op = name; op_in[name] = op_in[name] + 1
    local ts, st = window_time()
    if ts < 0 then record_time(name) end -- raises the error
    local close = st - grace
    local kb = kenc(k)
    local s = ts - size + adv
    if s < 0 then s = 0 end
    s = s - s % adv
    local accepted = false
    while s <= ts do
      local e = s + size
      if e > close then
        accepted = true
        if count then -- one C call: get, add one, put (same bytes as wval_enc)
          local new, old, wts = wcount_add(idx, kb, s, e, ts)
          forward(nxt, k, s, e, new, old, wts, ts)
        else
          local old, wts = wval_dec(wstore_get(idx, kb, s, e), count)
          local agg = old
          if wts == nil then agg = init(); wts = ts elseif ts > wts then wts = ts end
          local new = fn(k, v, agg)
          wstore_put(idx, kb, s, e, wval_enc(new, wts, count))
          forward(nxt, k, s, e, new, old, wts, ts)
        end
      end
      s = s + adv
    end
    if not accepted then late_drop(late_message(name, ts, st, grace), late_dlq) end
  end
end
builders["WINDOW-TUMBLING-AGGREGATE"] = fixed_windows
builders["WINDOW-HOPPING-AGGREGATE"] = fixed_windows

-- Sliding windows (Kafka's SlidingWindows): [start, end] with end - start
-- = size, both ends inclusive. Every record has a left window [t - size,
-- t] and, when a later record lies within size of it, a right window
-- [t + 1, t + 1 + size]; a record updates every window that contains it.
-- New windows take their aggregate from existing ones, as Kafka Streams'
-- processInOrder / processEarly do (ported step by step).
builders["WINDOW-SLIDING-AGGREGATE"] = function(node, nxt)
  local size, grace, idx, kenc, name = node.size, node.grace, node.store.index, node.kenc,
                                       node.name
  local init, fn, count, late_dlq = node.init, node.fn, node.count or false, node.late_dlq
  return function(k, v)
    if k == nil or v == nil then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local ts = record_time(name)
    local st = stream_time()
    local close = st - grace
    if ts + 1 + size <= close then
      return late_drop(late_message(name, ts, st, grace), late_dlq)
    end
    local kb = kenc(k)
    -- updateWindowAndForward: agg/wts of an existing window, or of the
    -- value a new window starts from (fresh: no old value downstream).
    local function update(s, agg, wts, fresh)
      local e = s + size
      if e < close then return end -- this window closed; others may not have
      local new = fn(k, v, agg)
      local nts = ts
      if agg ~= nil and wts > ts then nts = wts end
      wstore_put(idx, kb, s, e, wval_enc(new, nts, count))
      wforward(nxt, k, s, e, new, (not fresh) and agg or nil, nts, ts)
    end
    local function create_right(agg, wts) -- the current record's right window
      local s = ts + 1
      wstore_put(idx, kb, s, s + size, wval_enc(agg, wts, count))
      wforward(nxt, k, s, s + size, agg, nil, wts, ts)
    end
    local starts = {}
    local right_agg, right_ts, right_done = nil, nil, false
    local prev_ts
    if ts < size then
      -- processEarly: [0, size] holds every early record.
      local lo = 0
      local got = wstore_fetch(idx, kb, lo, ts + 1)
      local comb_agg, comb_ts
      for i = 1, #got, 3 do
        local s = got[i]
        local agg, wts = wval_dec(got[i + 2], count)
        starts[s] = true
        if s == 0 then
          comb_agg, comb_ts = agg, wts
          if wts < ts then prev_ts = wts end
        elseif s <= ts then
          right_agg, right_ts = agg, wts
          update(s, agg, wts, false)
        elseif s == ts + 1 then
          right_done = true
        end
      end
      if right_ts == nil and comb_ts ~= nil and comb_ts > ts then
        right_agg, right_ts = comb_agg, comb_ts
      end
      if not right_done and right_ts ~= nil and right_ts > ts then create_right(right_agg, right_ts) end
      if prev_ts ~= nil and not starts[prev_ts + 1] then
        update(prev_ts + 1, init(), ts, true)
      end
      if comb_ts == nil then update(0, init(), ts, true)
      else update(0, comb_agg, comb_ts, false) end
      return
    end
    -- processInOrder (every record at or after size, in order or not)
    local lo = ts - 2 * size
    if lo < 0 then lo = 0 end
    local got = wstore_fetch(idx, kb, lo, ts + 1)
    local left_agg, left_ts, left_done = nil, nil, false
    for i = 1, #got, 3 do
      local s = got[i]
      local e = s + size
      local agg, wts = wval_dec(got[i + 2], count)
      starts[s] = true
      if e < ts then
        left_agg, left_ts = agg, wts
        prev_ts = wts
      elseif e == ts then
        left_done = true
        if wts < ts then prev_ts = wts end
        update(s, agg, wts, false)
      elseif s <= ts then
        right_agg, right_ts = agg, wts
        update(s, agg, wts, false)
      elseif s == ts + 1 then
        right_done = true
      end
    end
    -- the previous record's right window, holding only this record
    if prev_ts ~= nil then
      local ps = prev_ts + 1
      if not starts[ps] and ps + size >= ts then update(ps, init(), ts, true) end
    end
    -- The left window starts from the latest earlier window's aggregate
    -- only when the previous record lies inside it (Kafka's
    -- leftWindowNotEmpty): a window fetched further back holds records
    -- more than size before this one.
    if not left_done then
      if prev_ts ~= nil and prev_ts >= ts - size then update(ts - size, left_agg, ts, true)
      else update(ts - size, init(), ts, true) end
    end
    if not right_done and right_ts ~= nil and right_ts > ts then create_right(right_agg, right_ts) end
  end
end

-- Session windows: [start, end], both inclusive; a record joins (and
-- merges) every session of its key ending at or after t - gap and starting
-- at or before t + gap. Merged sessions are deleted downstream (a null
-- value for their windowed key), then the merged session is forwarded.
-- Outputs carry the session's end as timestamp (Kafka Streams 3.x).
builders["WINDOW-SESSION-AGGREGATE"] = function(node, nxt)
  local gap, grace, idx, kenc, name = node.size, node.grace, node.store.index, node.kenc,
                                      node.name
  local init, fn, merger, count, late_dlq = node.init, node.fn, node.merger, node.count or false,
                                            node.late_dlq
  return function(k, v)
    if k == nil or v == nil then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local ts = record_time(name)
    local st = stream_time()
    local close = st - grace
    local kb = kenc(k)
    local got = wstore_fetch(idx, kb, mininteger, ts + gap)
    local agg = init()
    local ms, me = ts, ts
    local merged = {}
    for i = 1, #got, 3 do
      local s, e = got[i], got[i + 1]
      if e >= ts - gap then
        local sagg = wval_dec(got[i + 2], count)
        merged[#merged + 1] = { s, e, sagg }
        agg = merger(k, agg, sagg)
        if s < ms then ms = s end
        if e > me then me = e end
      end
    end
    if me < close then
      return late_drop(late_message(name, ts, st, grace), late_dlq)
    end
    -- Sessions that the merged one replaces are deleted (a tombstone
    -- downstream); one with the merged bounds is updated in place.
    local old
    for _, m in ipairs(merged) do
      if m[1] == ms and m[2] == me then
        old = m[3]
      else
        wstore_put(idx, kb, m[1], m[2], nil)
        wforward(nxt, k, m[1], m[2], nil, m[3], m[2], ts)
      end
    end
    agg = fn(k, v, agg)
    wstore_put(idx, kb, ms, me, wval_enc(agg, me, count))
    wforward(nxt, k, ms, me, agg, old, me, ts)
  end
end

-- Suppression. Buffer keys (byte order = emission order):
--   window_close: T(close) .. T(start) .. T(end) .. key bytes
--   time_limit:   "t" .. T(first buffered) .. key bytes   (the buffer)
--                 "k" .. key bytes -> T(first buffered)     (its index)
-- T(ms): 8 bytes big-endian with the sign bit flipped. Values: 8-byte
-- timestamp of the update, then its JSON (nothing for a tombstone).
local function tkey(ms) return spack(">i8", ms ~ mininteger) end
local function untkey(b, at) return sunpack(">i8", b, at) ~ mininteger end
local store_range = runnel._store_range
local punct_fns = {}

local function buf_val(v, ts)
  if v == nil then return spack(">i8", ts) end
  return spack(">i8", ts) .. json.encode(v)
end
local function unbuf_val(b)
  local ts = sunpack(">i8", b)
  if #b == 8 then return nil, ts end
  return json_decode(ssub(b, 9)), ts
end

builders["SUPPRESS"] = function(node, nxt)
  local idx, kenc, kdec, name, grace = node.store.index, node.kenc, node.kdec, node.name,
                                       node.grace
  local mode, time_limit, max_records = node.mode, node.time, node.max_records
  local extra = node.inclusive and 1 or 0
  local FF = string.rep("\255", 8)
  if mode == "window_close" then
    punct_fns[node.punct.id] = function(st)
      local got = store_range(idx, nil, tkey(st) .. FF)
      for i = 1, #got, 2 do
        local kb, vb = got[i], got[i + 1]
        local s, e = untkey(kb, 9), untkey(kb, 17)
        local v, ts = unbuf_val(vb)
        store_put(idx, kb, nil)
        current_op = name
        set_ts(ts)
        nxt(setmetatable({ key = kdec(ssub(kb, 25)), start = s, ["end"] = e }, Windowed), v, nil)
      end
    end
    return function(k, v)
      current_op = name; op_in[name] = op_in[name] + 1
      local kb = tkey(k["end"] + grace + extra) .. tkey(k.start) .. tkey(k["end"]) .. kenc(k.key)
      -- A tombstone (a merged-away session) removes the pending result:
      -- nothing of it was emitted.
      if v == nil then store_put(idx, kb, nil) return end
      store_put(idx, kb, buf_val(v, rec_ts()))
    end
  end
  local function keybytes(k)
    if node.windowed then return tkey(k.start) .. tkey(k["end"]) .. kenc(k.key) end
    return kenc(k)
  end
  local function key_of(kb)
    if node.windowed then
      return setmetatable({ key = kdec(ssub(kb, 17)), start = untkey(kb, 1), ["end"] = untkey(kb, 9) },
                          Windowed)
    end
    return kdec(kb)
  end
  local function emit_entry(tk, vb)
    local kb = ssub(tk, 10)
    store_put(idx, tk, nil)
    store_put(idx, "k" .. kb, nil)
    local v, ts = unbuf_val(vb)
    current_op = name
    set_ts(ts)
    nxt(key_of(kb), v, nil)
  end
  punct_fns[node.punct.id] = function(st)
    local got = store_range(idx, "t", "t" .. tkey(st - time_limit) .. FF)
    for i = 1, #got, 2 do emit_entry(got[i], got[i + 1]) end
  end
  return function(k, v)
    if k == nil then return end
    current_op = name; op_in[name] = op_in[name] + 1
    local kb = keybytes(k)
    local ts = rec_ts()
    local first = store_get(idx, "k" .. kb)
    if first then
      store_put(idx, "t" .. first .. kb, buf_val(v, ts))
      return
    end
    first = tkey(ts) -- Kafka: the buffer time is the first update's record time
    store_put(idx, "k" .. kb, first)
    store_put(idx, "t" .. first .. kb, buf_val(v, ts))
    if max_records then
      local got = store_range(idx, "t", "t" .. FF, max_records + 1)
      if #got > 2 * max_records then
        emit_entry(got[1], got[2]) -- the oldest; one new key adds at most one
        current_op = name
        set_ts(ts)
      end
    end
  end
end

-- The punctuator context given to job:punctuate functions.
local Punct = {}
Punct.__index = Punct
function Punct:get(store, key)
  local st = self.job.stores_by_name[store]
  if not st then error(fmt("punctuate: no store %q", tostring(store)), 2) end
  local kenc = st.node and st.node.kenc or encode_default
  return decode_store(store_get(st.index, kenc(key)))
end
-- p:range(store) -> { {key, value}, ... } in key byte order; a window
-- store's keys are windowed keys (store.h: u32 length, key, start, end).
function Punct:range(store)
  local st = self.job.stores_by_name[store]
  if not st then error(fmt("punctuate: no store %q", tostring(store)), 2) end
  local got = store_range(st.index, nil, nil)
  local kdec = st.node and st.node.kdec or builtin_serdes.string.decode
  local out = {}
  for i = 1, #got, 2 do
    local kb, vb = got[i], got[i + 1]
    if st.window then
      local n = sunpack(">I4", kb)
      local wk = setmetatable({ key = kdec(ssub(kb, 5, 4 + n)), start = untkey(kb, 5 + n),
                                ["end"] = untkey(kb, 13 + n) }, Windowed)
      out[#out + 1] = { wk, (wval_dec(vb, st.node and st.node.count)) }
    else
      out[#out + 1] = { kdec(kb), decode_store(vb) }
    end
  end
  return out
end
function Punct:emit(topic, key, value)
  emit(topic, encode_default(key), encode_default(value))
end

function runnel._punctuate(id, ts)
  return punct_fns[id](ts)
end

-- Fills desc.punctuators; called by _compile once sub-topologies exist.
local function describe_punctuators(job, desc)
  desc.punctuators = {}
  for _, p in ipairs(rawget(job, "punctuators") or {}) do
    local sub = 0
    if p.node then
      sub = p.node.sub
    else
      for i, n in ipairs(p.stores) do
        local st = job.stores_by_name[n]
        if not st then error(fmt("%spunctuate: no store %q in this job", p.where, n), 0) end
        local s = st.node and st.node.sub or 0
        if i > 1 and s ~= sub then
          error(fmt("%spunctuate: the stores %q and %q are in different sub-topologies", p.where,
                    p.stores[1], n), 0)
        end
        sub = s
      end
      local ctx = setmetatable({ job = job }, Punct)
      local fn = p.fn
      punct_fns[p.id] = function(ts) return fn(ts, ctx) end
    end
    desc.punctuators[#desc.punctuators + 1] = { id = p.id, subtopology = sub,
                                                interval = p.interval, type = p.type }
  end
end

compile_node = function(job, node, built)
  local f = built[node]
  if f then return f end
  op_in[node.name] = 0
  local b = builders[node.kind]
  if node.kind == "SOURCE" or node.kind == "REPARTITION-SOURCE" or node.kind == "BRANCH" then
    f = children_fn(job, node, built)
  elseif node.kind == "SPLIT" then
    f = b(node, nil, job, built)
  else
    f = b(node, children_fn(job, node, built), job, built)
  end
  built[node] = f
  return f
end

-- Union-find over nodes: a sub-topology is everything connected without
-- crossing a repartition topic.
local function subtopologies(job)
  local parent = {}
  local function find(n)
    while parent[n] ~= n do parent[n] = parent[parent[n]]; n = parent[n] end
    return n
  end
  for _, n in ipairs(job.nodes) do parent[n] = n end
  for _, n in ipairs(job.nodes) do
    for _, p in ipairs(n.parents) do
      local a, b = find(n), find(p)
      if a ~= b then parent[a] = b end
    end
    for _, p in ipairs(n.co or {}) do -- a table a join reads: same task
      local a, b = find(n), find(p)
      if a ~= b then parent[a] = b end
    end
  end
  local groups, order = {}, {}
  for _, n in ipairs(job.nodes) do
    local r = find(n)
    if not groups[r] then groups[r] = {}; order[#order + 1] = r end
    local g = groups[r]
    g[#g + 1] = n
  end
  -- Order sub-topologies by their first node, so ids are stable for a job.
  local subs = {}
  for i, r in ipairs(order) do
    subs[i] = { id = i - 1, nodes = groups[r] }
    for _, n in ipairs(groups[r]) do n.sub = i - 1 end
  end
  return subs
end

-- Co-partitioning (Kafka Streams' copartition groups): the source topics
-- upstream of a join (through its parents and the tables it reads, not
-- across repartition topics) must have the same partition count; merged
-- topics feeding no join need not (a task for partition p reads every
-- source topic that has a partition p).
local function copartition_group(n)
  local topics, seen, nodes = {}, {}, {}
  local function walk(x)
    if nodes[x] then return end
    nodes[x] = true
    for _, t in ipairs(x.topics or {}) do
      if not seen[t] then seen[t] = true; topics[#topics + 1] = t end
    end
    for _, p in ipairs(x.parents) do walk(p) end
    for _, p in ipairs(x.co or {}) do walk(p) end
  end
  walk(n)
  return { where = n.copartition, topics = topics }
end

-- Returns the description the runtime reads, and the entry functions:
-- entries[topic](key_bytes, value_bytes) runs one input record.
function runnel._compile(job)
  if getmetatable(job) ~= Job then
    error("the job script must return the job (return job), got " .. type(job), 0)
  end
  if #job.nodes == 0 then error("the job " .. job.name .. " has no streams or tables", 0) end
  for _, n in ipairs(job.nodes) do
    if n.kind == "SPLIT" and #n.branches == 0 then
      error(n.name .. ": split() has no branches", 0)
    end
  end
  local subs = subtopologies(job)
  local built, entries = {}, {}
  local desc = { name = job.name, errors_tolerance = job.errors_tolerance, dlq = job.dlq,
                 subtopologies = {}, stores = {}, internal_topics = {} }
  for _, s in ipairs(subs) do
    local d = { id = s.id, sources = {}, sinks = {}, stores = {}, nodes = {}, globals = {},
                copartition = {} }
    for _, n in ipairs(s.nodes) do
      if n.copartition then d.copartition[#d.copartition + 1] = copartition_group(n) end
      local nd = { name = n.name, kind = n.kind, children = {} }
      for _, c in ipairs(n.children) do nd.children[#nd.children + 1] = c.name end
      if n.store then nd.store = n.store.name; d.stores[#d.stores + 1] = n.store.name end
      if n.global_ref then
        nd.global_table = n.global_ref.name
        local seen = false
        for _, gi in ipairs(d.globals) do seen = seen or gi == n.global_ref.index end
        if not seen then d.globals[#d.globals + 1] = n.global_ref.index end
      end
      if n.topics then
        nd.topics = n.topics
        for _, t in ipairs(n.topics) do
          d.sources[#d.sources + 1] = { topic = t, internal = n.internal or false }
        end
      end
      if n.topic then
        nd.topic = type(n.topic) == "string" and n.topic or "(chosen per record)"
        d.sinks[#d.sinks + 1] = { topic = nd.topic, internal = n.kind == "REPARTITION-SINK" }
      end
      d.nodes[#d.nodes + 1] = nd
      if n.kind == "SOURCE" or n.kind == "TABLE-SOURCE" or n.kind == "REPARTITION-SOURCE" then
        local first = compile_node(job, n, built)
        local kdec = n.kdec
        local vdec = n.vdec or decode_store -- repartition values are JSON
        local ts = n.timestamp
        local name = n.name
        local entry
        if ts then
          entry = function(kb, vb)
            current_op = name; op_in[name] = op_in[name] + 1
            local k, v = kdec(kb), vdec(vb)
            local t = ts(k, v, runnel.record.timestamp())
            if type(t) ~= "number" then
              error(fmt("%s: the timestamp function returned %s, not a number", name, type(t)), 0)
            end
            runnel._set_event_time(t)
            return first(k, v)
          end
        else
          entry = function(kb, vb)
            current_op = name; op_in[name] = op_in[name] + 1
            return first(kdec(kb), vdec(vb))
          end
        end
        for _, t in ipairs(n.topics) do entries[t] = entry end
      end
    end
    desc.subtopologies[#desc.subtopologies + 1] = d
  end
  for _, st in ipairs(job.stores) do
    if st.global_topic then
      -- Restored from its topic, in every task that joins with it.
      desc.stores[#desc.stores + 1] = { name = st.name, index = st.index,
                                        global_topic = st.global_topic, subtopology = -1 }
    else
      desc.stores[#desc.stores + 1] = { name = st.name, index = st.index, changelog = st.changelog,
                                        subtopology = st.node and st.node.sub or 0,
                                        window = st.window or nil, retention = st.retention }
      desc.internal_topics[#desc.internal_topics + 1] = { name = st.changelog, kind = "changelog",
                                                          subtopology = st.node and st.node.sub or 0 }
    end
  end
  for _, g in ipairs(rawget(job, "globals") or {}) do
    entries[g.topics[1]] = global_entry(g)
  end
  for _, n in ipairs(job.nodes) do
    if n.kind == "REPARTITION-SOURCE" then
      desc.internal_topics[#desc.internal_topics + 1] = {
        name = n.topics[1], kind = "repartition", subtopology = n.sub,
        from_subtopology = n.repartition_of.sub }
    end
  end
  describe_punctuators(job, desc)
  return desc, entries
end

return runnel
