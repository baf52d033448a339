-- Counts words in the lines of the topic "lines" and writes each new count
-- to "word-counts" (as Kafka Streams' WordCountDemo does).
local job = runnel.job("wordcount")
job:stream("lines", { value = "string" })
   :flat_map_values(function(line)
      local words = {}
      for w in line:lower():gmatch("%a+") do words[#words + 1] = w end
      return words
   end)
   :group_by(function(_, word) return word end)
   :count("word-counts")
   :to_stream()
   :to("word-counts", { value = "json" })
return job
