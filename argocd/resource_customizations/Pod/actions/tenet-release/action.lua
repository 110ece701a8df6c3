-- Asks Tenet to release a quarantined pod: the annotation tenet.dev/release carries the reason,
-- which Tenet records in the pod's Released Event (docs/posture.md). Tenet removes the label and
-- the annotation itself.
if obj.metadata.labels == nil or obj.metadata.labels["tenet.dev/quarantined"] ~= "true" then
  error("pod " .. obj.metadata.name .. " is not quarantined by Tenet (no label tenet.dev/quarantined=true)", 0)
end
local reason = nil
if actionParams ~= nil then
  reason = actionParams["reason"]
end
if reason == nil or reason == "" then
  reason = "released from Argo CD"
end
if #reason > 512 then
  error("the reason is " .. #reason .. " characters long; keep it under 512 (a ticket or a sentence)", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["tenet.dev/release"] = reason
return obj
