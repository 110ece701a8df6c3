-- Argo CD health of a Tenet Incident. An Incident has no Ready condition: it is a record that a
-- person works through spec.state (Open → Acknowledged → Resolved); Tenet writes only status.
-- Open is Degraded (the workload is under an incident), Acknowledged is Suspended (someone is
-- on it), Resolved is Healthy. The message says what happened and what Tenet did.
local hs = {}
local state = "Open"
if obj.spec ~= nil and obj.spec.state ~= nil then
  state = obj.spec.state
end
if state == "Resolved" then
  hs.status = "Healthy"
  hs.message = "Resolved"
  return hs
end
local st = obj.status
if st == nil or st.rule == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Tenet to record the incident"
  return hs
end
local msg = tostring(st.severity or "unknown") .. " incident on " .. tostring(st.workload or "?") .. " (" .. tostring(st.rule) .. ", " .. tostring(st.eventCount or 0) .. " event(s))"
if st.response ~= nil and st.response.summary ~= nil then
  msg = msg .. ": " .. tostring(st.response.summary)
end
if state == "Acknowledged" then
  hs.status = "Suspended"
  hs.message = "Acknowledged: " .. msg
  return hs
end
hs.status = "Degraded"
hs.message = msg
return hs
