-- Argo CD health of a Tenet object: the same script for the three tenet.dev kinds
-- (ServiceIdentity, APIPolicy, RuntimeRule). The operator writes status.observedGeneration and
-- conditions: Ready sums the object up (its reason and message say what to fix); Tenet's other
-- conditions (APIPolicy's JWKSFetched) are True when all is well; Reconciling and Stalled, when
-- present, mean what kstatus says.
local hs = {}
local function say(c, prefix)
  return prefix .. tostring(c.reason or c.type) .. ": " .. tostring(c.message or "")
end
local gen = obj.metadata.generation
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Tenet operator to report status"
  return hs
end
local function stale(observed)
  return gen ~= nil and observed ~= nil and observed < gen
end
if gen ~= nil and (obj.status.observedGeneration == nil or stale(obj.status.observedGeneration)) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Tenet operator to observe generation " .. tostring(gen)
  return hs
end
local ready = nil
local others = {}
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    ready = c
  elseif c.type == "Stalled" then
    if c.status == "True" then
      hs.status = "Degraded"
      hs.message = say(c, "")
      return hs
    end
  elseif c.type == "Reconciling" then
    if c.status == "True" then
      hs.status = "Progressing"
      hs.message = say(c, "")
      return hs
    end
  else
    table.insert(others, c)
  end
end
if ready == nil or stale(ready.observedGeneration) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Tenet operator to set the Ready condition of generation " .. tostring(gen)
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = say(ready, "")
  return hs
end
if ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = say(ready, "")
  return hs
end
-- Ready: still Degraded while another of Tenet's conditions is False, Progressing while one is Unknown.
for _, want in ipairs({"False", "Unknown"}) do
  for _, c in ipairs(others) do
    if c.status == want and not stale(c.observedGeneration) then
      hs.status = want == "False" and "Degraded" or "Progressing"
      hs.message = say(c, c.type .. " ")
      return hs
    end
  end
end
hs.status = "Healthy"
hs.message = tostring(ready.message or "")
return hs
