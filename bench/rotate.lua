-- wrk script for bench/run.py: each connection's requests rotate through a fixed list of paths.
--
--   wrk -t2 -c8 -d10s -s bench/rotate.lua http://127.0.0.1:PORT -- /path/to/paths.txt 2
--
-- paths.txt holds one request path (with its query string) per line; the last argument is
-- the number of wrk threads (-t). Each wrk thread starts at a different point of the list,
-- so the threads do not ask for the same URL in step.
-- At the end one line is printed for bench/run.py to parse:
--   BENCH_JSON {"requests": ..., "duration_us": ..., "errors": {...}, "latency_us": {...}}

local paths = {}
local counter = 0
local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file = args[1]
   if file == nil then
      error("rotate.lua: give the paths file after --")
   end
   for line in io.lines(file) do
      if #line > 0 then
         table.insert(paths, line)
      end
   end
   if #paths == 0 then
      error("rotate.lua: no paths in " .. file)
   end
   -- spread the threads' starting points over the list (args[2]: the number of wrk threads)
   local nthreads = tonumber(args[2] or "1") or 1
   counter = math.floor((thread_index or 0) * #paths / math.max(nthreads, 1))
end

function request()
   local path = paths[(counter % #paths) + 1]
   counter = counter + 1
   return wrk.format("GET", path)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, '
         .. '"p50": %d, "p75": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
