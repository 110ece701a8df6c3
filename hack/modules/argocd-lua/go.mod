// Wrapper module: the Lua runner of the Argo CD health checks and actions in argocd/ (gopher-lua,
// the interpreter Argo CD embeds, from the Go module proxy).
module tenet.dev/hack/modules/argocd-lua

go 1.24.0

require (
	github.com/yuin/gopher-lua v1.1.1
	layeh.com/gopher-json v0.0.0-20201124131017-552bb3c4c3bf
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
