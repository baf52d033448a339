-- One final count per tumbling window (10 s, 2 s of grace), emitted when
-- stream time reaches the window's end plus grace; a late record changes
-- nothing that was emitted.
local job = runnel.job("final")
job:stream("clicks")
   :group_by_key()
   :window{ tumbling = "10s", grace = "2s" }
   :count("per-10s")
   :suppress{ ["until"] = "window_close" }
   :to_stream()
   :to("final")
return job
