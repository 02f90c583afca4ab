-- wrk script for bench/soak.sh: seven reads of GET / for every two writes of
-- new values and one GET /ping.

local counter = 0
local next_thread = 0

function setup(thread)
   thread:set("thread_id", next_thread)
   next_thread = next_thread + 1
end

function request()
   counter = counter + 1
   local turn = counter % 10
   if turn < 7 then
      return wrk.format("GET", "/")
   elseif turn < 9 then
      local body = string.format('{"value":"soak-%d-%d"}', thread_id, counter)
      return wrk.format("POST", "/send", { ["Content-Type"] = "application/json" }, body)
   end
   return wrk.format("GET", "/ping")
end
