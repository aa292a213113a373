//go:build tools

// Package tools pins kwok, the node and pod simulator the test control plane runs instead of
// kubelets, built by scripts/control-plane.sh.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
