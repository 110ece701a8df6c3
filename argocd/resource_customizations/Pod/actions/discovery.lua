-- Offers "tenet-release" on pods Tenet has quarantined (label tenet.dev/quarantined=true), and
-- only there. The release itself is Tenet's: its webhook lets the annotation through only when
-- the Kubernetes user that writes it (Argo CD's own ServiceAccount) may `update
-- runtimerules/release` in the pod's namespace (docs/gitops.md).
local actions = {}
if obj.metadata.labels ~= nil and obj.metadata.labels["tenet.dev/quarantined"] == "true" then
  actions["tenet-release"] = {["params"] = {{["name"] = "reason"}}}
end
return actions
