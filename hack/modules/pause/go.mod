// A minimal pod sandbox ("pause") program, built locally because no registry is reachable.
module tenet.dev/hack/modules/pause

go 1.21
