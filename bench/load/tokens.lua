-- wrk script for keygate's bench: every request carries `Authorization: Bearer <token>`, the tokens taken in
-- turn from a file (one a line). Arguments after `--`: the token file (empty: no header), the first line to
-- use, how many lines from there, and a phase length in seconds (0: none). With phases, each line reads
-- `<phase> <token>` and the script moves to the next phase's tokens every that many seconds (key rotation).
-- done() prints one JSON line after BENCH_JSON for the harness.

local tokens = {}
local phases = {}
local phase_s = 0
local started = 0
local next_index = 0

function init(args)
  local file, offset, span = args[1], tonumber(args[2] or "0"), tonumber(args[3] or "0")
  phase_s = tonumber(args[4] or "0")
  if file == nil or file == "" then return end
  local line_no = 0
  for line in io.lines(file) do
    if phase_s > 0 then
      local phase, token = line:match("^(%d+) (.+)$")
      phase = tonumber(phase) + 1
      phases[phase] = phases[phase] or {}
      table.insert(phases[phase], "Bearer " .. token)
    else
      if line_no >= offset and (span == 0 or line_no < offset + span) then
        tokens[#tokens + 1] = "Bearer " .. line
      end
      line_no = line_no + 1
    end
  end
  started = os.time()
end

function request()
  local list = tokens
  if phase_s > 0 then
    local phase = math.floor((os.time() - started) / phase_s) + 1
    if phase > #phases then phase = #phases end
    list = phases[phase]
  end
  if #list == 0 then return wrk.format() end
  next_index = next_index + 1
  if next_index > #list then next_index = 1 end
  return wrk.format(nil, nil, { ["Authorization"] = list[next_index] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
